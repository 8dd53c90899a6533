"""LoRA and LyCORIS files for tests, in the key layouts real trainers write, built against a (tiny) model's own
layers, for every family (SD1, SD2's OpenCLIP ViT-H, SDXL's CLIP-L + OpenCLIP bigG).

    lora_weights(model, rank=4, seed=0)                  # {layer id: (down, up, alpha)} for every Linear/Conv2d
    loha_weights(model, rank=4, seed=0)                  # {layer id: {"hada_w1_a": ..., "alpha": ...}} (LyCORIS LoHa)
    lokr_weights(model, seed=0)                          # {layer id: {"lokr_w1": ..., "lokr_w2": ...}} (LyCORIS LoKr)
    save_lora(path, model, weights, naming="kohya")      # kohya keys, diffusers block names (SD1/SD2 files)
    save_lora(path, model, weights, naming="kohya-ldm")  # kohya keys, original ldm names (SDXL files)
    save_lora(path, model, weights, naming="peft")       # diffusers/PEFT keys: unet.*.lora_A.weight, no alpha
    baked_state_dict(checkpoint_sd, [(weights, te_mult, unet_mult)])   # the checkpoint with the changes added

A layer id is the layer's checkpoint key without ".weight"; a third of an OpenCLIP attention's packed q/k/v is
"<...>.attn.in_proj_weight#0" (#1, #2 for k, v). Text encoder keys use transformers' CLIP names, as kohya writes
them for OpenCLIP encoders too ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj").

The diffusers names come from diffusers' own checkpoint converter (not from the engine under test), so a wrong
block-name table in the engine cannot agree with the files by construction.
"""
import json
import os
import re

import torch

UNET_PREFIX = "model.diffusion_model."
TE_PREFIX = "cond_stage_model.transformer."   # SD1's: + "text_model.encoder.layers.0.self_attn.q_proj"

# The text encoders trainers write keys for: (module path in the model, kohya prefix, PEFT root, kind).
# The SDXL refiner's lone bigG (conditioner.embedders.0.model) is none of these: no trainer names it.
TEXT_ENCODERS = [
    ("cond_stage_model.transformer", "lora_te_", "text_encoder", "clip"),                        # SD1: CLIP ViT-L
    ("cond_stage_model.model.transformer", "lora_te_", "text_encoder", "open_clip"),             # SD2: OpenCLIP ViT-H
    ("conditioner.embedders.0.transformer", "lora_te1_", "text_encoder", "clip"),                # SDXL: CLIP ViT-L
    ("conditioner.embedders.1.model.transformer", "lora_te2_", "text_encoder_2", "open_clip"),   # SDXL: OpenCLIP bigG
]
# OpenCLIP block part -> the transformers CLIP name trainers write for it; q/k/v are thirds of attn.in_proj_weight
OPENCLIP_TO_TRANSFORMERS = {"attn.out_proj": "self_attn.out_proj", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
QKV = ("q", "k", "v")


class PackedThird:
    """q, k or v: a third of an OpenCLIP attention's in_proj_weight, the weight a q_proj/k_proj/v_proj key changes."""

    def __init__(self, in_proj_weight, index):
        width = in_proj_weight.shape[0] // 3
        self.weight = in_proj_weight[index * width:(index + 1) * width]


def text_encoders(model):
    """[(checkpoint key prefix, kohya prefix, PEFT root, kind, module)] of the text encoders trainers address in `model`."""
    found = []
    for path, kohya, peft, kind in TEXT_ENCODERS:
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        found.append((path + ".", kohya, peft, kind, module))
    return found


def te_and_unet_layers(model):
    """{layer id: module with .weight} for the Linear/Conv2d layers (and OpenCLIP q/k/v thirds) of the text
    encoder(s) and the UNet of a model as built by tests.checkpoint_factory (not hijacked)."""
    layers = {}
    for prefix, _, _, kind, encoder in text_encoders(model):
        for path, module in encoder.named_modules():
            if isinstance(module, torch.nn.Linear):
                layers[prefix + path] = module
            elif kind == "open_clip" and isinstance(module, torch.nn.MultiheadAttention):
                for i in range(3):
                    layers[f"{prefix}{path}.in_proj_weight#{i}"] = PackedThird(module.in_proj_weight, i)
    for path, module in model.model.diffusion_model.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            layers[UNET_PREFIX + path] = module
    return layers


def is_text_encoder_layer(layer_id):
    return not layer_id.startswith(UNET_PREFIX)


def diffusers_unet_names(model):
    """ldm UNet module path -> diffusers module path, from diffusers' single-file converter."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
    unet = model.model.diffusion_model
    keys = [UNET_PREFIX + k for k in unet.state_dict()]
    numbered = {k: torch.tensor([float(i)]) for i, k in enumerate(keys)}
    config = {"layers_per_block": unet.num_res_blocks[0], "num_class_embeds": None}
    if hasattr(unet, "label_emb"):  # SDXL's size/pooled-text vector: diffusers' add_embedding
        config["addition_embed_type"] = "text_time"
    converted = convert_ldm_unet_checkpoint(numbered, config)
    names = {}
    for diffusers_key, value in converted.items():
        ldm_key = keys[int(value.item())][len(UNET_PREFIX):]
        for suffix in (".weight", ".bias"):
            if ldm_key.endswith(suffix) and diffusers_key.endswith(suffix):
                names[ldm_key[:-len(suffix)]] = diffusers_key[:-len(suffix)]
    return names


def _factor_pair(n):
    """(a, n // a) with a the smallest divisor of n above 1 (LoKr's split of a dimension)."""
    a = next((d for d in range(2, n + 1) if n % d == 0), 1)
    return a, n // a


def _random_layers(model, select, seed):
    generator = torch.Generator().manual_seed(seed)
    for layer_id, module in te_and_unet_layers(model).items():
        if select is None or select(layer_id):
            yield layer_id, module.weight.shape, generator


def lora_weights(model, rank=4, alpha=2.0, seed=0, scale=0.3, select=None, conv_kernels=True):
    """{layer id: (down, up, alpha)} with random factors; `select(layer_id)` filters layers.
    Conv layers get LoCon factors: down [r, in, kh, kw] (kernel sized) and up [out, r, 1, 1]."""
    weights = {}
    for layer_id, shape, generator in _random_layers(model, select, seed):
        out_dim, in_dim = shape[0], shape[1]
        r = min(rank, out_dim, in_dim)
        if len(shape) == 4:
            kernel = tuple(shape[2:]) if conv_kernels else (1, 1)
            down = torch.randn(r, in_dim, *kernel, generator=generator) * scale
            up = torch.randn(out_dim, r, 1, 1, generator=generator) * scale
        else:
            down = torch.randn(r, in_dim, generator=generator) * scale
            up = torch.randn(out_dim, r, generator=generator) * scale
        weights[layer_id] = (down, up, alpha)
    return weights


def loha_weights(model, rank=4, alpha=2.0, seed=0, scale=0.3, select=None):
    """{layer id: LyCORIS LoHa tensors}: hada_w1_a/w2_a [out, r], hada_w1_b/w2_b [r, in × kernel], alpha."""
    weights = {}
    for layer_id, shape, generator in _random_layers(model, select, seed):
        out_dim, in_size = shape[0], shape[1:].numel()
        r = min(rank, out_dim, in_size)
        weights[layer_id] = {name: torch.randn(*size, generator=generator) * scale for name, size in (
            ("hada_w1_a", (out_dim, r)), ("hada_w1_b", (r, in_size)), ("hada_w2_a", (out_dim, r)), ("hada_w2_b", (r, in_size)))}
        weights[layer_id]["alpha"] = torch.tensor(float(alpha))
    return weights


def lokr_weights(model, seed=0, scale=0.3, select=None):
    """{layer id: LyCORIS LoKr tensors} with both halves whole (no alpha scaling then), for Linear layers:
    lokr_w1 [a, b] and lokr_w2 [out / a, in / b], a and b the smallest divisors of out and in."""
    weights = {}
    for layer_id, shape, generator in _random_layers(model, select, seed):
        if len(shape) != 2:
            continue
        (a, c), (b, d) = _factor_pair(shape[0]), _factor_pair(shape[1])
        weights[layer_id] = {"lokr_w1": torch.randn(a, b, generator=generator) * scale,
                             "lokr_w2": torch.randn(c, d, generator=generator) * scale}
    return weights


def lora_delta(down, up, alpha, weight_shape):
    """The weight change a LoRA makes at multiplier 1: up @ down × alpha / rank, shaped like the weight."""
    rank = down.shape[0]
    return ((up.reshape(up.shape[0], -1).double() @ down.reshape(rank, -1).double()) * (alpha / rank)).reshape(weight_shape)


def network_delta(entry, weight_shape, dtype=torch.float16):
    """The weight change of one layer's entry (LoRA tuple, LoHa or LoKr dict) at multiplier 1, in float64, from the
    tensors as stored in a file of `dtype`."""
    stored = lambda t: torch.as_tensor(t).to(dtype).double()  # noqa: E731
    if isinstance(entry, tuple):
        down, up, alpha = entry
        return lora_delta(stored(down), stored(up), float(stored(alpha)), weight_shape)
    if "hada_w1_a" in entry:
        w = {k: stored(v) for k, v in entry.items()}
        rank = w["hada_w1_b"].shape[0]
        product = (w["hada_w1_a"] @ w["hada_w1_b"]) * (w["hada_w2_a"] @ w["hada_w2_b"])
        return (product * (float(w["alpha"]) / rank)).reshape(weight_shape)
    return torch.kron(stored(entry["lokr_w1"]), stored(entry["lokr_w2"])).reshape(weight_shape)


def _layer_paths(model, diffusers_names):
    """{layer id: (kohya layer key, PEFT module path)} for every layer trainers address."""
    encoders = text_encoders(model)
    paths = {}
    for layer_id in te_and_unet_layers(model):
        if layer_id.startswith(UNET_PREFIX):
            path = layer_id[len(UNET_PREFIX):]
            named = diffusers_names[path] if diffusers_names is not None else path
            paths[layer_id] = ("lora_unet_" + named.replace(".", "_"), "unet." + named)
            continue
        prefix, kohya, peft, kind, _ = next(e for e in encoders if layer_id.startswith(e[0]))
        path = transformers_path(kind, layer_id[len(prefix):])
        paths[layer_id] = (kohya + path.replace(".", "_"), f"{peft}.{path}")
    return paths


def transformers_path(kind, path):
    """The transformers CLIP module path trainers write for a text encoder's module path (OpenCLIP's renamed)."""
    if kind == "clip":
        return path
    m = re.fullmatch(r"resblocks\.(\d+)\.(.+)", path)
    block, part = m[1], m[2]
    if part.startswith("attn.in_proj_weight#"):
        return f"text_model.encoder.layers.{block}.self_attn.{QKV[int(part[-1])]}_proj"
    return f"text_model.encoder.layers.{block}.{OPENCLIP_TO_TRANSFORMERS[part]}"


def lora_state_dict(model, weights, naming="kohya", dtype=torch.float16):
    diffusers_names = diffusers_unet_names(model) if naming in ("kohya", "peft") else None
    paths = _layer_paths(model, diffusers_names)
    sd = {}
    for layer_id, entry in weights.items():
        kohya, peft = paths[layer_id]
        if naming == "peft":
            down, up, _ = entry
            sd[f"{peft}.lora_A.weight"] = down.to(dtype).contiguous()
            sd[f"{peft}.lora_B.weight"] = up.to(dtype).contiguous()
        elif isinstance(entry, tuple):
            down, up, alpha = entry
            sd[f"{kohya}.lora_down.weight"] = down.to(dtype).contiguous()
            sd[f"{kohya}.lora_up.weight"] = up.to(dtype).contiguous()
            sd[f"{kohya}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
        else:
            sd.update({f"{kohya}.{part}": torch.as_tensor(t).to(dtype).contiguous() for part, t in entry.items()})
    return sd


def save_lora(path, model, weights, naming="kohya", dtype=torch.float16, metadata=None):
    """Write the network as .safetensors (with kohya-style metadata) or, for .pt/.ckpt, as a plain torch state dict."""
    sd = lora_state_dict(model, weights, naming=naming, dtype=dtype)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file
        meta = {"ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_output_name": os.path.splitext(os.path.basename(path))[0]}
        meta.update(metadata or {})
        save_file(sd, str(path), metadata={k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    else:
        torch.save(sd, str(path))
    return str(path)


def baked_state_dict(checkpoint_sd, changes):
    """The checkpoint with each network's change added: changes = [(weights, te_multiplier, unet_multiplier)].
    Sums in float64, then rounds once to the checkpoint's dtype."""
    sd = dict(checkpoint_sd)
    totals = {}
    for weights, te_multiplier, unet_multiplier in changes:
        for layer_id, entry in weights.items():
            key, _, third = layer_id.partition("#")
            key = key if third else key + ".weight"
            shape = sd[key].shape
            rows = slice(None)
            if third:  # a third of the packed q/k/v rows
                width = shape[0] // 3
                rows, shape = slice(int(third) * width, (int(third) + 1) * width), (width,) + tuple(shape[1:])
            multiplier = te_multiplier if is_text_encoder_layer(layer_id) else unet_multiplier
            total = totals.setdefault(key, torch.zeros(sd[key].shape, dtype=torch.float64))
            total[rows] += multiplier * network_delta(entry, shape)
    for key, total in totals.items():
        sd[key] = (sd[key].double() + total).to(sd[key].dtype)
    return sd
