"""OpenCLIP's text transformer (SD2's ViT-H, SDXL's ViT-bigG), with the original parameter names.

Checkpoint keys under `cond_stage_model.model.` (SD2) or `conditioner.embedders.N.model.` (SDXL):
  token_embedding.weight, positional_embedding, transformer.resblocks.N.{ln_1, attn.in_proj_weight, attn.in_proj_bias,
  attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_final, text_projection (used as `x @ text_projection`)
Causal self-attention, pre-LayerNorm blocks, exact GELU in the MLP. No open_clip package is needed.
"""
import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.encoders.clip_text import uninitialised_embedding


@dataclasses.dataclass
class OpenCLIPTextConfig:
    width: int = 1024
    layers: int = 24
    heads: int = 16
    mlp_width: int = 4096
    context_length: int = 77
    vocab_size: int = 49408
    embed_dim: int = 1024  # text_projection's output width


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, mlp_width):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, mlp_width))
        self.mlp.add_module("gelu", nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(mlp_width, width))

    def attention(self, x, attn_mask=None):
        """Self-attention of x (batch, tokens, width) with the packed q/k/v projection of nn.MultiheadAttention."""
        attn = self.attn
        b, n, width = x.shape
        heads = attn.num_heads
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        mask = None if attn_mask is None else attn_mask[:n, :n].to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return attn.out_proj(out.transpose(1, 2).reshape(b, n, width))

    def forward(self, x, attn_mask=None):
        x = x + self.attention(self.ln_1(x), attn_mask)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, mlp_width):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp_width) for _ in range(layers)])


class OpenCLIPTextModel(nn.Module):
    """The text half of an OpenCLIP model. `hidden_states(tokens)` gives the input of every block and the last output."""

    def __init__(self, config: OpenCLIPTextConfig):
        super().__init__()
        self.config = config
        self.context_length = config.context_length
        self.vocab_size = config.vocab_size
        self.token_embedding = uninitialised_embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
        self.transformer = Transformer(config.width, config.layers, config.heads, config.mlp_width)
        self.ln_final = nn.LayerNorm(config.width)
        self.text_projection = nn.Parameter(torch.empty(config.width, config.embed_dim))
        self.register_buffer("attn_mask", self.build_attention_mask(), persistent=False)
        self.init_parameters()

    def init_parameters(self):
        """OpenCLIP's initialisation (only random-weight test models keep it; checkpoints replace every value); nothing
        to do on the meta device."""
        if self.positional_embedding.is_meta:
            return
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=self.config.width ** -0.5)

    def build_attention_mask(self):
        """Additive causal mask: a token sees itself and the tokens before it."""
        n = self.context_length
        device = self.positional_embedding.device
        if device.type == "meta":
            device = torch.device("cpu")
        return torch.full((n, n), float("-inf"), device=device).triu_(1)

    def restore_attention_mask(self):
        """The mask is not stored in checkpoints: after a meta-device build it must be recreated."""
        self.attn_mask = self.build_attention_mask().to(self.positional_embedding.device)

    @property
    def dtype(self):
        return self.token_embedding.weight.dtype

    def hidden_states(self, tokens, stop_at=None):
        """[embeddings, after block 1, ..., after block L] (batch, tokens, width); with `stop_at` only the first
        `stop_at` blocks run (A1111/SD2's "penultimate": stop_at = L - 1)."""
        x = self.token_embedding(tokens) + self.positional_embedding[:tokens.shape[1]].to(self.dtype)
        states = [x]
        blocks = self.transformer.resblocks if stop_at is None else self.transformer.resblocks[:stop_at]
        for block in blocks:
            x = block(x, attn_mask=self.attn_mask)
            states.append(x)
        return states

    def pooled(self, last_hidden_state, tokens):
        """OpenCLIP's text embedding: the final-LN state at the end token (the largest id, 49407) @ text_projection."""
        x = self.ln_final(last_hidden_state)
        return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)] @ self.text_projection
