"""A1111's prompt wrappers for the OpenCLIP text encoders (A1111: modules.sd_hijack_open_clip): SD2's ViT-H and
SDXL's bigG, with the same chunking, emphasis and textual inversion as CLIP (modules.sd_hijack_clip).

OpenCLIP pads a prompt with 0 after its end token where CLIP repeats the end token (`id_pad`). OpenCLIP's vocabulary
is CLIP's, so the tokenizer shipped in modules/clip_tokenizer serves both. As in A1111, CLIP skip does not apply to
these encoders: they use the layer their model's config names.
"""
import torch

from modules import sd_hijack_clip


class _OpenCLIPWords(sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase):
    def __init__(self, wrapped, hijack):
        super().__init__(wrapped, hijack)
        self.tokenizer = wrapped.tokenizer
        self.comma_token = self.tokenizer.get_vocab().get(",</w>", None)
        self.id_start = self.tokenizer.bos_token_id
        self.id_end = self.tokenizer.eos_token_id
        self.id_pad = 0

    def tokenize(self, texts):
        return self.tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"]

    def encode_embedding_init_text(self, init_text, nvpt):
        token_embedding = self.wrapped.model.token_embedding
        token_embedding = getattr(token_embedding, "wrapped", token_embedding)
        ids = self.tokenizer(init_text, max_length=nvpt, truncation=True, add_special_tokens=False)["input_ids"]
        return token_embedding(torch.asarray([ids], device=token_embedding.weight.device, dtype=torch.long)).squeeze(0)


class FrozenOpenCLIPEmbedderWithCustomWords(_OpenCLIPWords):
    """SD2: the penultimate block's output after the final LayerNorm."""

    def encode_with_transformers(self, tokens):
        return self.wrapped.encode_with_transformer(tokens)


class FrozenOpenCLIPEmbedder2WithCustomWords(_OpenCLIPWords):
    """SDXL's bigG: the penultimate block's output (no final LayerNorm), with the pooled embedding attached as
    `z.pooled` (the conditioner puts it first in the vector)."""

    def encode_with_transformers(self, tokens):
        d = self.wrapped.encode_with_transformer(tokens)
        z = d[self.wrapped.layer]
        pooled = d.get("pooled")
        if pooled is not None:
            z.pooled = pooled
        return z
