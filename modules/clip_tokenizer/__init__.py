"""CLIP ViT-L/14's BPE tokenizer, from files shipped in this folder (derived from open_clip's bpe vocabulary)."""
import functools
import os

TOKENIZER_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=1)
def load_clip_tokenizer():
    """The HF CLIPTokenizer with SD1's vocabulary: "a photo of a cat" -> 49406 320 1125 539 320 2368 49407."""
    from transformers import CLIPTokenizer
    from modules import transformers_compat
    transformers_compat.apply(CLIPTokenizer)  # (extension-compat) transformers-4 helpers extensions call on it
    return CLIPTokenizer.from_pretrained(TOKENIZER_DIR, local_files_only=True)
