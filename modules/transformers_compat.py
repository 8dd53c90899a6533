"""The transformers-4 tokenizer API extensions call, on our transformers (5), applied before extensions load.

A1111 extensions reach into the SD1 text encoder's slow `CLIPTokenizer` (e.g. Cutoff calls
`tokenizer._convert_token_to_id(token)`, others read `tokenizer.encoder`, the dataset tag editor
`tokenizer.byte_decoder`); transformers 5 keeps only the tokenizers-backed class, which lacks these. Each is added
only where missing, with the old meaning. The light CLIP tokenizer (modules/clip_tokenizer) has the same helpers.
"""
import sys

_applied = False


def bytes_to_unicode():
    """Byte-level BPE's table byte -> printable character: printable Latin-1 bytes stand for themselves, every other
    byte for the next character from U+0100 on. GPT-2's and CLIP's table, in their order (printable bytes first),
    which is also the order of CLIP's first 256 tokens."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def _convert_token_to_id(self, token):
    """Old slow-tokenizer helper: the id of one BPE token string, or the unknown token's id."""
    token_id = self.convert_tokens_to_ids(token)
    return token_id if token_id is not None else self.convert_tokens_to_ids(self.unk_token)


def _encoder(self):
    """Old slow-tokenizer attribute: the vocabulary, token string -> id."""
    return self.get_vocab()


def _byte_encoder(self):
    """Old slow-tokenizer attribute: byte -> the character byte-level BPE writes it as."""
    return bytes_to_unicode()


def _byte_decoder(self):
    """Old slow-tokenizer attribute: byte-level BPE's character -> the byte it stands for."""
    return {character: byte for byte, character in bytes_to_unicode().items()}


def apply(tokenizer_class=None):
    """Add the old helpers to CLIPTokenizer. Cheap when it is not imported yet: then nothing is imported here
    (importing transformers' models costs seconds at startup) and its loading applies it later."""
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
    for name, getter in (("encoder", _encoder), ("byte_encoder", _byte_encoder), ("byte_decoder", _byte_decoder)):
        if name not in dir(CLIPTokenizer):
            setattr(CLIPTokenizer, name, property(getter))
