"""The transformers-4 tokenizer API extensions call, on our transformers (5), applied before extensions load.

A1111 extensions reach into the SD1 text encoder's slow `CLIPTokenizer` (e.g. Cutoff calls
`tokenizer._convert_token_to_id(token)`, others read `tokenizer.encoder`); transformers 5 keeps only the
tokenizers-backed class, which lacks these. Each is added only where missing, with the old meaning.
"""
import sys

_applied = False


def _convert_token_to_id(self, token):
    """Old slow-tokenizer helper: the id of one BPE token string, or the unknown token's id."""
    token_id = self.convert_tokens_to_ids(token)
    return token_id if token_id is not None else self.convert_tokens_to_ids(self.unk_token)


def _encoder(self):
    """Old slow-tokenizer attribute: the vocabulary, token string -> id."""
    return self.get_vocab()


def apply(tokenizer_class=None):
    """Add the old helpers to CLIPTokenizer. Cheap when it is not imported yet: then nothing is imported here
    (importing transformers' models costs seconds at startup) and `load_clip_tokenizer()` applies it later."""
    global _applied
    if _applied:
        return
    if tokenizer_class is None:
        module = sys.modules.get("transformers.models.clip.tokenization_clip")
        tokenizer_class = getattr(module, "CLIPTokenizer", None)
        if tokenizer_class is None:
            return
    _applied = True
    CLIPTokenizer = tokenizer_class
    if not hasattr(CLIPTokenizer, "_convert_token_to_id"):
        CLIPTokenizer._convert_token_to_id = _convert_token_to_id
    if "encoder" not in dir(CLIPTokenizer):
        CLIPTokenizer.encoder = property(_encoder)
