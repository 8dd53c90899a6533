"""LoRA files for tests, in the key layouts real trainers write, built against a (tiny) model's own layers.

    lora_weights(model, rank=4, seed=0)                  # {layer: (down, up, alpha)} for every Linear/Conv2d
    save_lora(path, weights, naming="kohya")             # kohya keys, diffusers block names (SD1 files)
    save_lora(path, weights, naming="kohya-ldm")         # kohya keys, original ldm names (SDXL files)
    save_lora(path, weights, naming="peft")              # diffusers/PEFT keys: unet.*.lora_A.weight, no alpha
    baked_state_dict(checkpoint_sd, [(weights, te_mult, unet_mult)])   # the checkpoint with the changes added

The diffusers names come from diffusers' own checkpoint converter (not from the engine under test), so a wrong
block-name table in the engine cannot agree with the files by construction.
"""
import json
import os

import torch

UNET_PREFIX = "model.diffusion_model."
TE_PREFIX = "cond_stage_model.transformer."   # + "text_model.encoder.layers.0.self_attn.q_proj"


def te_and_unet_layers(model):
    """{checkpoint key prefix of the layer (without .weight): module} for the Linear/Conv2d layers of the text
    encoder and the UNet of a model as built by tests.checkpoint_factory (not hijacked)."""
    layers = {}
    for path, module in model.cond_stage_model.transformer.named_modules():
        if isinstance(module, torch.nn.Linear):
            layers[TE_PREFIX + path] = module
    for path, module in model.model.diffusion_model.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            layers[UNET_PREFIX + path] = module
    return layers


def diffusers_unet_names(model):
    """ldm UNet module path -> diffusers module path, from diffusers' single-file converter."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
    unet = model.model.diffusion_model
    keys = [UNET_PREFIX + k for k in unet.state_dict()]
    numbered = {k: torch.tensor([float(i)]) for i, k in enumerate(keys)}
    converted = convert_ldm_unet_checkpoint(numbered, {"layers_per_block": unet.num_res_blocks[0], "num_class_embeds": None})
    names = {}
    for diffusers_key, value in converted.items():
        ldm_key = keys[int(value.item())][len(UNET_PREFIX):]
        for suffix in (".weight", ".bias"):
            if ldm_key.endswith(suffix) and diffusers_key.endswith(suffix):
                names[ldm_key[:-len(suffix)]] = diffusers_key[:-len(suffix)]
    return names


def lora_weights(model, rank=4, alpha=2.0, seed=0, scale=0.3, select=None, conv_kernels=True):
    """{checkpoint layer prefix: (down, up, alpha)} with random factors; `select(prefix)` filters layers.
    Conv layers get LoCon factors: down [r, in, kh, kw] (kernel sized) and up [out, r, 1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for prefix, module in te_and_unet_layers(model).items():
        if select is not None and not select(prefix):
            continue
        w = module.weight
        out_dim, in_dim = w.shape[0], w.shape[1]
        r = min(rank, out_dim, in_dim)
        if w.dim() == 4:
            kernel = tuple(w.shape[2:]) if conv_kernels else (1, 1)
            down = torch.randn(r, in_dim, *kernel, generator=generator) * scale
            up = torch.randn(out_dim, r, 1, 1, generator=generator) * scale
        else:
            down = torch.randn(r, in_dim, generator=generator) * scale
            up = torch.randn(out_dim, r, generator=generator) * scale
        weights[prefix] = (down, up, alpha)
    return weights


def lora_delta(down, up, alpha, weight_shape):
    """The weight change a LoRA makes at multiplier 1: up @ down × alpha / rank, shaped like the weight."""
    rank = down.shape[0]
    return ((up.reshape(up.shape[0], -1).double() @ down.reshape(rank, -1).double()) * (alpha / rank)).reshape(weight_shape)


def kohya_name(prefix, diffusers_names=None):
    if prefix.startswith(TE_PREFIX):
        return "lora_te_" + prefix[len(TE_PREFIX):].replace(".", "_")
    path = prefix[len(UNET_PREFIX):]
    if diffusers_names is not None:
        path = diffusers_names[path]
    return "lora_unet_" + path.replace(".", "_")


def peft_name(prefix, diffusers_names):
    if prefix.startswith(TE_PREFIX):
        return "text_encoder." + prefix[len(TE_PREFIX):]
    return "unet." + diffusers_names[prefix[len(UNET_PREFIX):]]


def lora_state_dict(model, weights, naming="kohya", dtype=torch.float16):
    diffusers_names = diffusers_unet_names(model) if naming in ("kohya", "peft") else None
    sd = {}
    for prefix, (down, up, alpha) in weights.items():
        if naming == "peft":
            name = peft_name(prefix, diffusers_names)
            sd[f"{name}.lora_A.weight"] = down.to(dtype).contiguous()
            sd[f"{name}.lora_B.weight"] = up.to(dtype).contiguous()
            continue
        name = kohya_name(prefix, diffusers_names if naming == "kohya" else None)
        sd[f"{name}.lora_down.weight"] = down.to(dtype).contiguous()
        sd[f"{name}.lora_up.weight"] = up.to(dtype).contiguous()
        sd[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return sd


def save_lora(path, model, weights, naming="kohya", dtype=torch.float16, metadata=None):
    """Write the LoRA as .safetensors (with kohya-style metadata) or, for .pt/.ckpt, as a plain torch state dict."""
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
    """The checkpoint with each LoRA's change added: changes = [(weights, te_multiplier, unet_multiplier)].
    Sums in float64, then rounds once to the checkpoint's dtype."""
    sd = dict(checkpoint_sd)
    totals = {}
    for weights, te_multiplier, unet_multiplier in changes:
        for prefix, (down, up, alpha) in weights.items():
            key = prefix + ".weight"
            multiplier = te_multiplier if prefix.startswith(TE_PREFIX) else unet_multiplier
            delta = lora_delta(down.half().float(), up.half().float(), float(torch.tensor(alpha).half()), sd[key].shape)
            totals[key] = totals.get(key, 0) + multiplier * delta
    for key, total in totals.items():
        sd[key] = (sd[key].double() + total).to(sd[key].dtype)
    return sd
