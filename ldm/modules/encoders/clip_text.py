"""CLIP's text transformer (SD1's text encoder, SDXL's CLIP ViT-L), with transformers' module and parameter names.

Checkpoint keys under `cond_stage_model.transformer.` (SD1) or `conditioner.embedders.0.transformer.` (SDXL):
  text_model.embeddings.{token_embedding, position_embedding}, text_model.encoder.layers.N.{self_attn.{q_proj, k_proj,
  v_proj, out_proj}, layer_norm1, mlp.{fc1, fc2}, layer_norm2}, text_model.final_layer_norm
The tree is transformers 4's CLIPTextModel (a `text_model` level above the embeddings), which SD checkpoints, A1111's
code and extensions address. Causal self-attention through torch's fused scaled_dot_product_attention, pre-LayerNorm
blocks, quick GELU (OpenAI's CLIP) or exact GELU in the MLP. Our own, so that loading a model does not import
transformers' modeling code (seconds and ~200 MB: it pulls in torch._dynamo); the tokenizer is modules/clip_tokenizer's.
"""
import dataclasses

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass
class CLIPTextConfig:
    """The fields of transformers' CLIPTextConfig that the model reads (defaults: CLIP ViT-L/14, SD1's encoder)."""
    vocab_size: int = 49408
    hidden_size: int = 768
    intermediate_size: int = 3072
    projection_dim: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    bos_token_id: int = 49406
    eos_token_id: int = 49407
    pad_token_id: int = 49407

    def __post_init__(self):
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"CLIP text model: hidden_act must be one of {sorted(ACTIVATIONS)}, got {self.hidden_act!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"CLIP text model: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")

    def to_dict(self):
        return dataclasses.asdict(self)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": F.gelu}


def uninitialised_embedding(num_embeddings, embedding_dim):
    """nn.Embedding without its random initialisation: on the meta device (every checkpoint load) torch's normal_
    imports torch._dynamo (seconds and ~150 MB); the models initialise their parameters themselves off the meta device."""
    return nn.Embedding(num_embeddings, embedding_dim, _weight=torch.empty(num_embeddings, embedding_dim))


class CLIPTextModelOutput(dict):
    """transformers' BaseModelOutputWithPooling as callers use it: each field by attribute (None when not computed),
    by key and by position (outputs[0] is last_hidden_state); fields not computed are absent from keys and positions."""

    FIELDS = ("last_hidden_state", "pooler_output", "hidden_states", "attentions")

    def __init__(self, last_hidden_state, pooler_output, hidden_states=None):
        fields = (("last_hidden_state", last_hidden_state), ("pooler_output", pooler_output), ("hidden_states", hidden_states))
        super().__init__((name, value) for name, value in fields if value is not None)

    def __getattr__(self, name):
        if name in self.FIELDS:
            return self.get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __getitem__(self, key):
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self):
        return tuple(self.values())


class CLIPTextEmbeddings(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.token_embedding = uninitialised_embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = uninitialised_embedding(config.max_position_embeddings, config.hidden_size)
        # not stored in checkpoints (some SD1 files carry it, some as floats: the loader ignores that key)
        self.register_buffer("position_ids", self.build_position_ids(), persistent=False)

    def build_position_ids(self):
        n, device = self.position_embedding.weight.shape[0], self.position_embedding.weight.device
        return torch.arange(n, device="cpu" if device.type == "meta" else device).expand((1, -1))

    def restore_position_ids(self):
        """The position ids are not stored in checkpoints: after a meta-device build they must be recreated."""
        self.position_ids = self.build_position_ids()

    def forward(self, input_ids=None, position_ids=None, inputs_embeds=None):
        n = input_ids.shape[-1] if input_ids is not None else inputs_embeds.shape[-2]
        if n > self.position_embedding.weight.shape[0]:
            raise ValueError(f"CLIP text model: {n} tokens, more than its {self.position_embedding.weight.shape[0]} positions")
        if position_ids is None:
            position_ids = self.position_ids[:, :n]
        if inputs_embeds is None:
            inputs_embeds = self.token_embedding(input_ids)  # textual inversion's hijack replaces token_embedding
        return inputs_embeds + self.position_embedding(position_ids)


class CLIPAttention(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.embed_dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.embed_dim // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def forward(self, hidden_states, attention_mask=None):
        """Causal self-attention; `attention_mask` (batch, 1, tokens, tokens), True where a token may look, replaces
        the plain causal mask when the batch has padding."""
        b, n, _ = hidden_states.shape
        q, k, v = (proj(hidden_states).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask, is_causal=attention_mask is None,
                                             scale=self.scale)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.embed_dim))


class CLIPMLP(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.activation_fn = ACTIVATIONS[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states):
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.self_attn = CLIPAttention(config)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states, attention_mask=None):
        hidden_states = hidden_states + self.self_attn(self.layer_norm1(hidden_states), attention_mask)
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class CLIPEncoder(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, inputs_embeds, attention_mask=None):
        """[inputs_embeds, after layer 1, ..., after layer L]."""
        states = [inputs_embeds]
        for layer in self.layers:
            states.append(layer(states[-1], attention_mask))
        return states


def causal_padding_mask(attention_mask, n):
    """(batch, tokens) 1/0 padding mask -> (batch, 1, tokens, tokens) bool: a token sees the unpadded tokens up to
    itself; None when nothing is padded (the plain causal path)."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    causal = torch.ones(n, n, dtype=torch.bool, device=attention_mask.device).tril()
    return causal[None, None] & attention_mask[:, None, None, :n].bool()


class CLIPTextTransformer(nn.Module):
    """transformers' CLIPTextTransformer (transformers 4), the `text_model` of CLIPTextModel."""

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.config = config
        self.embeddings = CLIPTextEmbeddings(config)
        self.encoder = CLIPEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.eos_token_id = config.eos_token_id

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, output_hidden_states=None, return_dict=None,
                output_attentions=None):
        if input_ids is None:
            raise ValueError("CLIP text model: input_ids are required")
        if output_attentions:
            raise ValueError("CLIP text model: fused attention computes no attention weights (output_attentions)")
        input_ids = input_ids.view(-1, input_ids.shape[-1])
        hidden_states = self.embeddings(input_ids=input_ids, position_ids=position_ids)
        mask = None if attention_mask is None else causal_padding_mask(attention_mask.to(hidden_states.device), input_ids.shape[-1])
        states = self.encoder(hidden_states, mask)
        last_hidden_state = self.final_layer_norm(states[-1])
        output = CLIPTextModelOutput(last_hidden_state, self.pooled(last_hidden_state, input_ids),
                                     tuple(states) if output_hidden_states else None)
        return output.to_tuple() if return_dict is False else output

    def pooled(self, last_hidden_state, input_ids):
        """The state at each row's first end token (transformers' rule; configs from before its fix, with
        eos_token_id 2, take the largest id's position, as it does)."""
        ids = input_ids.to(dtype=torch.int, device=last_hidden_state.device)
        positions = ids.argmax(dim=-1) if self.eos_token_id == 2 else (ids == self.eos_token_id).int().argmax(dim=-1)
        return last_hidden_state[torch.arange(last_hidden_state.shape[0], device=last_hidden_state.device), positions]


class CLIPTextModel(nn.Module):
    """The text model under `.text_model`, as SD checkpoints (`transformer.text_model.*`) and A1111-era code
    (`transformer.text_model.embeddings.token_embedding`, `.final_layer_norm`) address it. Calling it calls the text
    model."""

    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.config = config
        self.text_model = CLIPTextTransformer(config)
        self.init_parameters()

    def init_parameters(self):
        """transformers' initialisation of a CLIP text model (only random-weight test models keep it; checkpoints
        replace every value); nothing to do on the meta device."""
        if self.text_model.embeddings.position_embedding.weight.is_meta:
            return
        c = self.config
        width, depth = c.hidden_size, c.num_hidden_layers
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            elif isinstance(module, CLIPAttention):
                for proj in (module.q_proj, module.k_proj, module.v_proj):
                    nn.init.normal_(proj.weight, std=width ** -0.5 * (2 * depth) ** -0.5)
                nn.init.normal_(module.out_proj.weight, std=width ** -0.5)
            elif isinstance(module, CLIPMLP):
                nn.init.normal_(module.fc1.weight, std=(2 * width) ** -0.5)
                nn.init.normal_(module.fc2.weight, std=width ** -0.5 * (2 * depth) ** -0.5)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, output_hidden_states=None, return_dict=None,
                output_attentions=None):
        return self.text_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               output_hidden_states=output_hidden_states, return_dict=return_dict,
                               output_attentions=output_attentions)

    def get_input_embeddings(self):
        return self.text_model.embeddings.token_embedding

    def set_input_embeddings(self, value):
        self.text_model.embeddings.token_embedding = value

    @property
    def dtype(self):
        return self.text_model.embeddings.token_embedding.weight.dtype

    @property
    def device(self):
        return self.text_model.embeddings.token_embedding.weight.device
