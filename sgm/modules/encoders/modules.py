"""SDXL's conditioner and its embedders (original path: sgm.modules.encoders.modules).

Checkpoint keys: `conditioner.embedders.N.` + the embedder's own names: CLIP-L `transformer.text_model.*`, OpenCLIP
bigG `model.*`; the size/crop/score embedders have no weights. `GeneralConditioner(batch)` returns
{"crossattn": (B, 77k, 2048), "vector": (B, 2816)} for SDXL base, with the original's rules: 3-dim outputs are
concatenated on the channel axis into crossattn, 2-dim ones into vector, in embedder order.
"""
import torch
from torch import nn

from ldm.modules.diffusionmodules.openaimodel import timestep_embedding
from ldm.modules.encoders import modules as ldm_encoders


class AbstractEmbModel(nn.Module):
    """An embedder of the conditioner: which batch entry it reads (`input_key`) and whether it trains."""

    def __init__(self):
        super().__init__()
        self.is_trainable = False
        self.ucg_rate = 0.0
        self.input_key = None
        self.legacy_ucg_val = None


class FrozenCLIPEmbedder(ldm_encoders.FrozenCLIPEmbedder):
    """SDXL's CLIP ViT-L: the hidden state of `layer_idx` (penultimate), without the final LayerNorm."""

    def __init__(self, version=None, device="cpu", max_length=77, freeze=True, layer="hidden", layer_idx=11,
                 always_return_pooled=False, config=None):
        super().__init__(version=version, device=device, max_length=max_length, freeze=freeze, layer=layer,
                         layer_idx=layer_idx, config=config)
        self.return_pooled = always_return_pooled
        self.is_trainable = False
        self.ucg_rate = 0.0
        self.input_key = "txt"
        self.legacy_ucg_val = None


class FrozenOpenCLIPEmbedder2(ldm_encoders.FrozenOpenCLIPEmbedder):
    """SDXL's OpenCLIP ViT-bigG: the penultimate block's output (no final LayerNorm, legacy=False) and, with
    `always_return_pooled`, the pooled embedding: the last block's state at the end token, final-LayerNormed,
    @ text_projection."""

    def __init__(self, arch="ViT-bigG-14", version=None, device="cpu", max_length=77, freeze=True, layer="penultimate",
                 always_return_pooled=False, legacy=False, config=None, layer_idx=None):
        super().__init__(arch=arch, version=version, device=device, max_length=max_length, freeze=freeze, layer=layer,
                         config=config, layer_idx=layer_idx, final_layer_norm=False)
        self.return_pooled = always_return_pooled
        self.legacy = legacy
        self.is_trainable = False
        self.ucg_rate = 0.0
        self.input_key = "txt"
        self.legacy_ucg_val = None

    def encode_with_transformer(self, tokens):
        """{"last": ..., "penultimate": ..., layer: ..., "pooled": ...} as the original returns for legacy=False."""
        states = self.model.hidden_states(tokens)
        layers = self.model.transformer.layers
        index = self.hidden_index if self.hidden_index is not None else layers - self.layer_idx
        result = {"last": states[-1], "penultimate": states[-2], self.layer: states[index]}
        result["pooled"] = self.model.pooled(states[-1], tokens)
        return result

    def forward(self, text):
        z = self.encode_with_transformer(self.tokenize(text).to(self.device))
        if self.return_pooled:
            return z[self.layer], z["pooled"]
        return z[self.layer]


class ConcatTimestepEmbedderND(AbstractEmbModel):
    """Each number of (B, d) -> its sinusoidal embedding of `outdim`, concatenated: (B, d * outdim)."""

    def __init__(self, outdim=256, input_key=None):
        super().__init__()
        self.outdim = outdim
        self.input_key = input_key

    def forward(self, x):
        if x.ndim == 1:
            x = x[:, None]
        b, dims = x.shape
        emb = timestep_embedding(x.reshape(-1), self.outdim)
        return emb.reshape(b, dims * self.outdim)


class GeneralConditioner(nn.Module):
    OUTPUT_DIM2KEYS = {2: "vector", 3: "crossattn", 4: "concat", 5: "concat"}
    KEY2CATDIM = {"vector": 1, "crossattn": 2, "concat": 1}

    def __init__(self, emb_models=None, embedders=None):
        super().__init__()
        self.embedders = nn.ModuleList(embedders if embedders is not None else (emb_models or []))

    def forward(self, batch: dict, force_zero_embeddings=None) -> dict:
        """Run every embedder on its batch entry; `force_zero_embeddings` lists input keys whose embeddings are zeroed
        (A1111 zeroes "txt" for an all-empty negative prompt)."""
        force_zero_embeddings = force_zero_embeddings or []
        output = {}
        for embedder in self.embedders:
            with torch.no_grad():
                emb_out = embedder(batch[embedder.input_key])
            if not isinstance(emb_out, (list, tuple)):
                emb_out = [emb_out]
            for emb in emb_out:
                out_key = self.OUTPUT_DIM2KEYS[emb.dim()]
                if embedder.input_key in force_zero_embeddings:
                    emb = torch.zeros_like(emb)
                if out_key in output:
                    output[out_key] = torch.cat((output[out_key], emb.to(output[out_key])), self.KEY2CATDIM[out_key])
                else:
                    output[out_key] = emb
        return output

    # ---- what A1111 adds so the conditioner stands in for a text encoder (after the hijack wraps the embedders) ----
    def _text_embedders(self, method):
        return [embedder for embedder in self.embedders if hasattr(embedder, method)]

    def encode_embedding_init_text(self, init_text, nvpt):
        """The text's token embeddings in every text encoder, side by side (SDXL: 768 + 1280 = 2048 wide)."""
        return torch.cat([e.encode_embedding_init_text(init_text, nvpt) for e in self._text_embedders("encode_embedding_init_text")], dim=1)

    def tokenize(self, texts):
        for embedder in self._text_embedders("tokenize"):
            return embedder.tokenize(texts)
        raise AssertionError("no tokenizer available")

    def process_texts(self, texts):
        for embedder in self._text_embedders("process_texts"):
            return embedder.process_texts(texts)
        raise AssertionError("no text encoder wrapper available")

    def get_target_prompt_token_count(self, token_count):
        for embedder in self._text_embedders("get_target_prompt_token_count"):
            return embedder.get_target_prompt_token_count(token_count)
        raise AssertionError("no text encoder wrapper available")
