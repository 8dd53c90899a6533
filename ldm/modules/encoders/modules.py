"""Text encoders (original path: ldm.modules.encoders.modules; checkpoint prefix `cond_stage_model.`)."""
import torch
from torch import nn

from ldm.modules.encoders.clip_text import CLIPTextConfig, CLIPTextEmbeddings, CLIPTextModel


class AbstractEncoder(nn.Module):
    def encode(self, *args, **kwargs):
        raise NotImplementedError


def sd1_clip_config(hidden_size=768, num_hidden_layers=12, intermediate_size=3072, vocab_size=49408,
                    max_position_embeddings=77, num_attention_heads=None):
    """CLIP ViT-L/14's text model config (SD1's text encoder), with any widths read from a checkpoint."""
    return CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads or max(1, hidden_size // 64),
        max_position_embeddings=max_position_embeddings, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        projection_dim=hidden_size, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )


class FrozenCLIPEmbedder(AbstractEncoder):
    """CLIP text model: list of prompts -> (B, 77, hidden) hidden states (last layer, or `layer_idx` with "hidden").

    Built from a CLIPTextConfig (never downloaded); the tokenizer is the one shipped in modules/clip_tokenizer.
    `.transformer` is our CLIP text model (ldm.modules.encoders.clip_text) with transformers' names.
    """

    LAYERS = ["last", "pooled", "hidden"]

    def __init__(self, version=None, device="cpu", max_length=77, freeze=True, layer="last", layer_idx=None, config=None):
        super().__init__()
        from modules.clip_tokenizer import load_clip_tokenizer
        if layer not in self.LAYERS:
            raise ValueError(f"layer must be one of {self.LAYERS}, got {layer!r}")
        self.tokenizer = load_clip_tokenizer()
        self.transformer = CLIPTextModel(config if config is not None else sd1_clip_config())
        self.max_length = max_length
        self.layer = layer
        self.layer_idx = layer_idx
        if freeze:
            self.freeze()

    @property
    def device(self):
        return self.transformer.text_model.embeddings.token_embedding.weight.device

    def freeze(self):
        self.transformer = self.transformer.eval()
        for param in self.parameters():
            param.requires_grad = False

    def tokenize(self, text):
        batch = self.tokenizer(text, truncation=True, max_length=self.max_length, return_length=True,
                               return_overflowing_tokens=False, padding="max_length", return_tensors="pt")
        return batch["input_ids"]

    def forward(self, text):
        tokens = self.tokenize(text).to(self.device)
        outputs = self.transformer(input_ids=tokens, output_hidden_states=self.layer == "hidden")
        if self.layer == "last":
            return outputs.last_hidden_state
        if self.layer == "pooled":
            return outputs.pooler_output[:, None, :]
        return outputs.hidden_states[self.layer_idx]

    def encode(self, text):
        return self(text)


class FrozenOpenCLIPEmbedder(AbstractEncoder):
    """SD2's OpenCLIP ViT-H text encoder: list of prompts -> (B, 77, 1024), the penultimate block's output after the
    final LayerNorm ("penultimate", as SD2's configs) or the last block's ("last").

    `.model` is the OpenCLIP text transformer with the original parameter names (checkpoint: cond_stage_model.model.*).
    Tokens: the shipped CLIP vocabulary (OpenCLIP's is the same), padded with 0 after the end token as OpenCLIP does."""

    LAYERS = ["last", "penultimate"]

    def __init__(self, arch="ViT-H-14", version=None, device="cpu", max_length=77, freeze=True, layer="last",
                 config=None, layer_idx=None, final_layer_norm=True):
        super().__init__()
        from ldm.modules.encoders.open_clip_text import OpenCLIPTextConfig, OpenCLIPTextModel
        from modules.clip_tokenizer import load_clip_tokenizer
        if layer not in ("last", "penultimate", "hidden"):
            raise ValueError(f"layer must be last, penultimate or hidden, got {layer!r}")
        self.model = OpenCLIPTextModel(config if config is not None else OpenCLIPTextConfig())
        self.tokenizer = load_clip_tokenizer()
        self.max_length = max_length
        self.layer = layer
        self.layer_idx = {"last": 0, "penultimate": 1}.get(layer, 0)  # blocks left out at the end, as the original
        self.hidden_index = layer_idx
        self.final_layer_norm = final_layer_norm
        if freeze:
            self.freeze()

    @property
    def device(self):
        return self.model.token_embedding.weight.device

    def freeze(self):
        self.model = self.model.eval()
        for param in self.parameters():
            param.requires_grad = False

    def tokenize(self, text):
        """OpenCLIP's tokenize: start, the prompt's tokens, end, then zeros to max_length (truncated to fit)."""
        tokenizer = self.tokenizer
        ids = tokenizer(list(text), truncation=False, add_special_tokens=False)["input_ids"]
        result = torch.zeros(len(ids), self.max_length, dtype=torch.long)
        for row, tokens in enumerate(ids):
            tokens = [tokenizer.bos_token_id] + tokens[:self.max_length - 2] + [tokenizer.eos_token_id]
            result[row, :len(tokens)] = torch.tensor(tokens)
        return result

    def encode_with_transformer(self, tokens):
        """The chosen block's output for the token ids (final LayerNorm applied when the config says so)."""
        layers = self.model.transformer.layers
        index = self.hidden_index if self.hidden_index is not None else layers - self.layer_idx
        x = self.model.hidden_states(tokens, stop_at=index)[index]
        return self.model.ln_final(x) if self.final_layer_norm else x

    def forward(self, text):
        return self.encode_with_transformer(self.tokenize(text).to(self.device))

    def encode(self, text):
        return self(text)


def restore_non_persistent_buffers(module: nn.Module):
    """Buffers that checkpoints do not store (CLIP's position ids, OpenCLIP's causal mask), recreated after a
    meta-device build, for every text encoder inside `module`."""
    from ldm.modules.encoders.open_clip_text import OpenCLIPTextModel
    for child in module.modules():
        if isinstance(child, CLIPTextEmbeddings):
            child.restore_position_ids()
        elif isinstance(child, OpenCLIPTextModel):
            child.restore_attention_mask()
