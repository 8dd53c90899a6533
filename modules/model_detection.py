"""Read a checkpoint's architecture from its state dict's keys and shapes alone (no side files).

`detect_config(state_dict, filename)` returns a `ModelConfig` (family, UNet/VAE/CLIP widths and depths) that
`ldm` modules are built from. What the weights cannot tell (head counts) follows the family's rule:
SD1's UNet has 8 heads per transformer; CLIP has one head per 64 channels.
Families other than SD1 are recognised and refused with a clear "not supported yet".
"""
import dataclasses
import os
import re

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP = "cond_stage_model.transformer.text_model."


class UnsupportedModelError(ValueError):
    """The file is a model we recognise but cannot run yet, or not a Stable Diffusion checkpoint at all."""


@dataclasses.dataclass
class ModelConfig:
    family: str                      # "sd1"
    unet: dict                       # UNetModel kwargs
    vae: dict                        # AutoencoderKL kwargs: {"ddconfig": {...}, "embed_dim": n}
    clip: dict                       # sd1_clip_config kwargs
    conditioning_key: str = "crossattn"   # "hybrid" for 9-channel inpainting UNets
    parameterization: str = "eps"

    @property
    def in_channels(self):
        return self.unet["in_channels"]


def _name(filename):
    return os.path.basename(filename) if filename else "state dict"


def detect_family(sd, filename=None):
    """'sd1', or raise UnsupportedModelError naming the file and what it looks like."""
    keys = sd.keys()
    name = _name(filename)

    def has(prefix):
        return any(k.startswith(prefix) for k in keys)

    if has("conditioner.embedders."):
        raise UnsupportedModelError(f"{name}: this is an SDXL checkpoint; SDXL is not supported yet (only SD1.x)")
    if has(UNET + "joint_blocks.") or has("text_encoders."):
        raise UnsupportedModelError(f"{name}: this is an SD3 checkpoint; SD3 is not supported yet (only SD1.x)")
    if has(UNET + "double_blocks.") or has("double_blocks."):
        raise UnsupportedModelError(f"{name}: this is a Flux checkpoint; Flux is not supported yet (only SD1.x)")
    if has("cond_stage_model.model.transformer.") or has("cond_stage_model.model.token_embedding"):
        raise UnsupportedModelError(f"{name}: this is an SD2.x checkpoint (OpenCLIP text encoder); SD2 is not supported yet (only SD1.x)")
    if has("lora_unet_") or has("lora_te_") or any(".lora_down." in k or ".lora_A." in k for k in keys):
        raise UnsupportedModelError(f"{name}: this is a LoRA, not a checkpoint; put it in models/Lora")
    if not has(UNET):
        if has("encoder.conv_in.") or has("decoder.conv_in."):
            raise UnsupportedModelError(f"{name}: this is a VAE, not a checkpoint; put it in models/VAE")
        if has("conv_in.weight") or has("down_blocks.") or has("text_model."):
            raise UnsupportedModelError(f"{name}: this looks like a diffusers-format model; only single-file checkpoints in the original layout are supported")
        raise UnsupportedModelError(f"{name}: not a Stable Diffusion checkpoint (no '{UNET}*' UNet weights)")
    if UNET + "label_emb.0.0.weight" in keys:
        raise UnsupportedModelError(f"{name}: this UNet is class/size-conditioned (SDXL-like or unCLIP); not supported yet (only SD1.x)")
    context = _context_dim(sd)
    if context is not None and context != _clip_hidden(sd):
        if context == 1024:
            raise UnsupportedModelError(f"{name}: this is an SD2.x checkpoint (context 1024); SD2 is not supported yet (only SD1.x)")
    if not has(VAE):
        raise UnsupportedModelError(f"{name}: checkpoint has no VAE weights ('{VAE}*'); expected a full SD1.x checkpoint")
    if not has(CLIP):
        raise UnsupportedModelError(f"{name}: checkpoint has no CLIP text encoder weights ('{CLIP}*'); expected a full SD1.x checkpoint")
    return "sd1"


def _context_dim(sd):
    for k, v in sd.items():
        if k.startswith(UNET) and k.endswith("attn2.to_k.weight"):
            return v.shape[1]
    return None


def _clip_hidden(sd):
    w = sd.get(CLIP + "embeddings.token_embedding.weight")
    return None if w is None else w.shape[1]


def _indices(keys, pattern):
    """Distinct integer captures of `pattern` over the keys, sorted."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys for m in [rx.match(k)] if m})


def detect_unet_config(sd, filename=None):
    keys = [k for k in sd.keys() if k.startswith(UNET)]
    name = _name(filename)
    try:
        conv_in = sd[UNET + "input_blocks.0.0.weight"]
        out_conv = sd[UNET + "out.2.weight"]
    except KeyError as e:
        raise UnsupportedModelError(f"{name}: UNet weights incomplete: missing {e.args[0]}") from None
    model_channels, in_channels = conv_in.shape[0], conv_in.shape[1]

    # Walk input_blocks: ResBlocks make up a level; a Downsample ends it.
    channel_mult, num_res_blocks, transformer_depth, attention_resolutions = [], [], [], []
    blocks = _indices(keys, re.escape(UNET) + r"input_blocks\.(\d+)\.")
    res_in_level, ds, level_mult, level_depth = 0, 1, None, 0
    for i in blocks[1:]:
        prefix = f"{UNET}input_blocks.{i}."
        if prefix + "0.op.weight" in sd:
            channel_mult.append(level_mult)
            num_res_blocks.append(res_in_level)
            transformer_depth.append(level_depth)
            res_in_level, level_depth = 0, 0
            ds *= 2
            continue
        w = sd.get(prefix + "0.in_layers.2.weight")
        if w is None:
            raise UnsupportedModelError(f"{name}: unrecognised UNet block 'input_blocks.{i}'")
        level_mult = w.shape[0] // model_channels
        res_in_level += 1
        depth = len(_indices(keys, re.escape(prefix) + r"1\.transformer_blocks\.(\d+)\."))
        if depth:
            level_depth = depth
            if ds not in attention_resolutions:
                attention_resolutions.append(ds)
    channel_mult.append(level_mult)
    num_res_blocks.append(res_in_level)
    transformer_depth.append(level_depth)

    proj_in = next((sd[k] for k in keys if k.endswith(".proj_in.weight")), None)
    use_linear = proj_in is not None and proj_in.ndim == 2
    context_dim = _context_dim(sd)
    mid_depth = len(_indices(keys, re.escape(UNET) + r"middle_block\.1\.transformer_blocks\.(\d+)\."))

    return dict(
        image_size=32, in_channels=in_channels, out_channels=out_conv.shape[0], model_channels=model_channels,
        attention_resolutions=attention_resolutions, num_res_blocks=num_res_blocks[0] if len(set(num_res_blocks)) == 1 else num_res_blocks,
        channel_mult=tuple(channel_mult), num_heads=8, num_head_channels=-1, use_spatial_transformer=True,
        transformer_depth=transformer_depth, transformer_depth_middle=mid_depth or 1, context_dim=context_dim, use_linear_in_transformer=use_linear,
        middle_block_attention=mid_depth > 0, legacy=False,
    )


def detect_vae_config(sd, filename=None, prefix=VAE):
    """AutoencoderKL kwargs from VAE weights (keys under `prefix`: "first_stage_model." or "" for a bare VAE file)."""
    name = _name(filename)
    try:
        conv_in = sd[prefix + "encoder.conv_in.weight"]
        conv_out = sd[prefix + "encoder.conv_out.weight"]
        dec_out = sd[prefix + "decoder.conv_out.weight"]
        quant = sd[prefix + "quant_conv.weight"]
    except KeyError as e:
        raise UnsupportedModelError(f"{name}: VAE weights incomplete: missing {e.args[0]}") from None
    keys = [k for k in sd.keys() if k.startswith(prefix + "encoder.")]
    ch = conv_in.shape[0]
    levels = _indices(keys, re.escape(prefix) + r"encoder\.down\.(\d+)\.")
    ch_mult = tuple(sd[f"{prefix}encoder.down.{i}.block.0.conv1.weight"].shape[0] // ch for i in levels)
    num_res_blocks = len(_indices(keys, re.escape(prefix) + r"encoder\.down\.0\.block\.(\d+)\."))
    attn_levels = _indices(keys, re.escape(prefix) + r"encoder\.down\.(\d+)\.attn\.")
    resolution = 256
    ddconfig = dict(
        double_z=True, z_channels=conv_out.shape[0] // 2, resolution=resolution, in_channels=conv_in.shape[1],
        out_ch=dec_out.shape[0], ch=ch, ch_mult=ch_mult, num_res_blocks=num_res_blocks,
        attn_resolutions=[resolution // 2 ** i for i in attn_levels], dropout=0.0,
    )
    return dict(ddconfig=ddconfig, embed_dim=quant.shape[0] // 2)


def detect_clip_config(sd, filename=None):
    name = _name(filename)
    try:
        tokens = sd[CLIP + "embeddings.token_embedding.weight"]
        positions = sd[CLIP + "embeddings.position_embedding.weight"]
        fc1 = sd[CLIP + "encoder.layers.0.mlp.fc1.weight"]
    except KeyError as e:
        raise UnsupportedModelError(f"{name}: CLIP text encoder weights incomplete: missing {e.args[0]}") from None
    layers = _indices(sd.keys(), re.escape(CLIP) + r"encoder\.layers\.(\d+)\.")
    hidden = tokens.shape[1]
    return dict(hidden_size=hidden, num_hidden_layers=len(layers), intermediate_size=fc1.shape[0],
                vocab_size=tokens.shape[0], max_position_embeddings=positions.shape[0],
                num_attention_heads=max(1, hidden // 64))


def detect_config(sd, filename=None):
    """The whole model's config, read from keys and shapes; raises UnsupportedModelError for anything but SD1."""
    family = detect_family(sd, filename)
    unet = detect_unet_config(sd, filename)
    if unet["in_channels"] not in (4, 9):
        raise UnsupportedModelError(f"{_name(filename)}: UNet has {unet['in_channels']} input channels; supported: 4 (normal) or 9 (inpainting)")
    clip = detect_clip_config(sd, filename)
    if unet["context_dim"] != clip["hidden_size"]:
        raise UnsupportedModelError(f"{_name(filename)}: UNet context size {unet['context_dim']} does not match the text encoder's width {clip['hidden_size']}")
    return ModelConfig(
        family=family, unet=unet, vae=detect_vae_config(sd, filename), clip=clip,
        conditioning_key="hybrid" if unet["in_channels"] == 9 else "crossattn",
    )
