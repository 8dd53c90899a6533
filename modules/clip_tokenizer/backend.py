"""The `tokenizers` (Rust) pipeline of CLIP's BPE tokenizer, built as transformers 5's CLIPTokenizer builds it.

Importing `tokenizers` takes ~0.02 s; importing transformers to get the same pipeline took ~2.2 s at every start.
tests/test_clip_tokenizer.py checks that this pipeline serialises to exactly what transformers' CLIPTokenizer holds.
"""
import json
import os

# CLIP's pre-tokenizer: its special tokens, English contractions, runs of letters, single digits, runs of other
# non-space characters (open_clip's regex, as transformers' tokenization_clip.py gives it to `tokenizers`).
CLIP_SPLIT_PATTERN = (r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
                      r"""[^\s\p{L}\p{N}]+""")
END_OF_WORD_SUFFIX = "</w>"


def read_tokenizer_config(directory):
    """The shipped tokenizer_config.json: special tokens, model_max_length."""
    with open(os.path.join(directory, "tokenizer_config.json"), encoding="utf-8") as file:
        return json.load(file)


def build_clip_bpe_tokenizer(directory, config):
    """A `tokenizers.Tokenizer` from `directory`'s vocab.json + merges.txt: NFC, whitespace runs to one space,
    lowercase; CLIP's split then byte-level; BPE with "</w>" ending each word; <|startoftext|> ... <|endoftext|>."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    unk, bos, eos, pad = (config[name] for name in ("unk_token", "bos_token", "eos_token", "pad_token"))
    model = BPE.from_file(os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt"),
                          dropout=None, continuing_subword_prefix="", end_of_word_suffix=END_OF_WORD_SUFFIX,
                          fuse_unk=False, unk_token=unk)
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_SPLIT_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    # the special tokens are matched before normalisation, never split, and skipped by decode(skip_special_tokens)
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in dict.fromkeys(
        (bos, eos, unk, pad))])
    tokenizer.post_processor = processors.RobertaProcessing(
        (eos, tokenizer.token_to_id(eos)), (bos, tokenizer.token_to_id(bos)), trim_offsets=False,
        add_prefix_space=False)
    return tokenizer
