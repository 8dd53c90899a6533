"""Checkpoints for tests, written in the real SD1 key layout (model.diffusion_model.*, first_stage_model.*,
cond_stage_model.transformer.text_model.*) at small widths, deterministic from a seed.

    make_tiny_sd1_checkpoint(path)                        # tiny .safetensors (or .ckpt/.pt by extension)
    make_tiny_sd1_checkpoint(path, in_channels=9, dtype=torch.float16, with_ema=True, seed=1)
    make_tiny_vae(path)                                   # a separate VAE file that fits the tiny checkpoint
    sd15_state_dict(seed=0)                               # full SD1.5 widths, random weights (for parity tests)

The same code that loads a real SD1.5 checkpoint loads these: widths are read from shapes.
"""
import os

import torch

# Small but structurally complete: every block type appears, the VAE still downsamples 8x,
# the text encoder has CLIP's real vocabulary and 77 positions so the shipped tokenizer's ids work.
TINY_UNET = dict(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=[2],
                 transformer_depth=1, num_heads=8, context_dim=32)
TINY_VAE = dict(ch=32, ch_mult=(1, 2, 2, 2), num_res_blocks=1, z_channels=4, embed_dim=4)
TINY_CLIP = dict(hidden_size=32, num_hidden_layers=2, intermediate_size=64, vocab_size=49408, max_position_embeddings=77)

SD15_UNET = dict(model_channels=320, channel_mult=(1, 2, 4, 4), num_res_blocks=2, attention_resolutions=[4, 2, 1],
                 transformer_depth=1, num_heads=8, context_dim=768)
SD15_VAE = dict(ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2, z_channels=4, embed_dim=4)
SD15_CLIP = dict(hidden_size=768, num_hidden_layers=12, intermediate_size=3072, vocab_size=49408, max_position_embeddings=77)


def build_random_model(unet=None, vae=None, clip=None, in_channels=4, seed=0):
    """Our LatentDiffusion with random (PyTorch default) initialisation at the given widths, on the CPU in fp32."""
    from ldm.models.diffusion.ddpm import LatentDiffusion
    from ldm.modules.encoders.modules import FrozenCLIPEmbedder, sd1_clip_config
    unet = dict(TINY_UNET if unet is None else unet)
    vae = dict(TINY_VAE if vae is None else vae)
    clip = dict(TINY_CLIP if clip is None else clip)
    embed_dim = vae.pop("embed_dim")
    ddconfig = dict(double_z=True, resolution=256, in_channels=3, out_ch=3, attn_resolutions=[], dropout=0.0, **vae)
    unet_config = dict(in_channels=in_channels, out_channels=4, use_spatial_transformer=True, **unet)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = FrozenCLIPEmbedder(config=sd1_clip_config(**clip))
        model = LatentDiffusion(unet_config=unet_config, first_stage_config=dict(ddconfig=ddconfig, embed_dim=embed_dim),
                                cond_stage_model=text_encoder, conditioning_key="hybrid" if in_channels == 9 else "crossattn")
    return model.eval().requires_grad_(False)


def model_state_dict(model, dtype=torch.float32, with_ema=False, with_schedule=True):
    """A flat checkpoint dict as the original training code saved it (optionally with EMA copies of the UNet)."""
    sd = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    if with_schedule:
        for name in model.SCHEDULE_BUFFERS:
            sd[name] = getattr(model, name).detach().float().contiguous()
    if with_ema:
        # LitEma's names: the UNet key without its "model." prefix, dots removed
        for k, v in list(sd.items()):
            if k.startswith("model.diffusion_model."):
                sd["model_ema." + k[len("model."):].replace(".", "")] = (v * 0.5).contiguous()
        sd["model_ema.decay"] = torch.tensor(0.9999, dtype=torch.float32)
        sd["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
    return sd


def save_state_dict(sd, path, wrap_in_state_dict=True):
    """Write as .safetensors, or as a torch zip (.ckpt/.pt) with the Lightning "state_dict" wrapper."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if str(path).lower().endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file(sd, str(path), metadata={"format": "pt"})
    else:
        torch.save({"state_dict": sd, "global_step": 470000} if wrap_in_state_dict else sd, str(path))
    return path


def make_tiny_sd1_checkpoint(path, in_channels=4, dtype=torch.float32, with_ema=False, seed=0):
    """A tiny SD1 checkpoint at `path` (.safetensors, .ckpt or .pt); returns the path."""
    model = build_random_model(in_channels=in_channels, seed=seed)
    return save_state_dict(model_state_dict(model, dtype=dtype, with_ema=with_ema), path)


def tiny_vae_state_dict(seed=1, prefixed=False, dtype=torch.float32):
    """VAE weights fitting the tiny checkpoint; keys bare (encoder.*) or with the first_stage_model. prefix."""
    from ldm.models.autoencoder import AutoencoderKL
    vae = dict(TINY_VAE)
    embed_dim = vae.pop("embed_dim")
    ddconfig = dict(double_z=True, resolution=256, in_channels=3, out_ch=3, attn_resolutions=[], dropout=0.0, **vae)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoencoderKL(ddconfig=ddconfig, embed_dim=embed_dim)
    prefix = "first_stage_model." if prefixed else ""
    return {prefix + k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}


def make_tiny_vae(path, seed=1, prefixed=False, dtype=torch.float32):
    """A separate VAE file for the tiny checkpoint; .safetensors or .pt/.ckpt by extension."""
    return save_state_dict(tiny_vae_state_dict(seed=seed, prefixed=prefixed, dtype=dtype), path, wrap_in_state_dict=False)


def sd15_state_dict(seed=0, dtype=torch.float32, with_schedule=True):
    """A random-weight checkpoint dict at full SD1.5 widths (UNet 320x(1,2,4,4), VAE 128x(1,2,4,4), CLIP ViT-L/14)."""
    model = build_random_model(unet=SD15_UNET, vae=SD15_VAE, clip=SD15_CLIP, seed=seed)
    if dtype != torch.float32:
        return model_state_dict(model, dtype=dtype, with_schedule=with_schedule)
    # fp32: hand out the model's own tensors (no 4 GB copy)
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    if with_schedule:
        sd.update({name: getattr(model, name) for name in model.SCHEDULE_BUFFERS})
    return sd


# ---- every family: SD1, SD2, SDXL, SDXL refiner, each variant ---------------------------------------------------------
#
#     make_family_checkpoint(path, "sdxl", variant="inpainting")   # tiny SDXL inpainting .safetensors + its .yaml
#     family_config("sd2", heads=False)                            # the ModelConfig with the family's default heads
#
# Tiny widths, with head counts that differ from the families' rules (so a loader that ignored the yaml beside the
# file would compute something else), written to `<name>.yaml` as the original training configs say them.

TINY_FAMILY = {
    "sd1": dict(unet=dict(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, transformer_depth=[0, 1],
                          heads=dict(num_heads=4, num_head_channels=-1), use_linear=False),
                text=[dict(kind="clip", width=32, layers=2, heads=4, mlp_width=64)]),
    "sd2": dict(unet=dict(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, transformer_depth=[1, 1],
                          heads=dict(num_heads=-1, num_head_channels=8), use_linear=True),
                text=[dict(kind="open_clip", width=32, layers=3, heads=4, mlp_width=64, embed_dim=32)]),
    "sdxl": dict(unet=dict(model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1, transformer_depth=[0, 1, 2],
                           heads=dict(num_heads=-1, num_head_channels=8), use_linear=True),
                 text=[dict(kind="clip", width=32, layers=2, heads=2, mlp_width=64),
                       dict(kind="open_clip", width=48, layers=3, heads=3, mlp_width=96, embed_dim=40)],
                 vector_embed_dim=16),
    "sdxl_refiner": dict(unet=dict(model_channels=32, channel_mult=(1, 2, 2, 2), num_res_blocks=1, transformer_depth=[0, 2, 2, 0],
                                   heads=dict(num_heads=-1, num_head_channels=8), use_linear=True),
                         text=[dict(kind="open_clip", width=48, layers=3, heads=3, mlp_width=96, embed_dim=40)],
                         vector_embed_dim=16),
}


def family_config(family_name, variant="base", heads=True, parameterization="eps", tiny=None):
    """The ModelConfig of a tiny model of the family (heads=False: the family's default head rule)."""
    from modules import model_families
    from modules.model_detection import ModelConfig, TextEncoderConfig
    family = model_families.BY_NAME[family_name]
    tiny = tiny or TINY_FAMILY[family_name]
    u = tiny["unet"]
    in_channels = {"base": 4, "inpainting": 9, "instruct-pix2pix": 8}[variant]
    depths = list(u["transformer_depth"])
    text_encoders = []
    for spec, t in zip(family.text_encoders, tiny["text"]):
        text_encoders.append(TextEncoderConfig(
            spec=spec, width=t["width"], layers=t["layers"], heads=t["heads"] if heads else max(1, t["width"] // 64),
            mlp_width=t["mlp_width"], vocab_size=49408, context_length=77, embed_dim=t.get("embed_dim")))
    unet = dict(
        image_size=32, in_channels=in_channels, out_channels=4, model_channels=u["model_channels"],
        attention_resolutions=[2 ** level for level, depth in enumerate(depths) if depth],
        num_res_blocks=u["num_res_blocks"], channel_mult=tuple(u["channel_mult"]), use_spatial_transformer=True,
        transformer_depth=depths, transformer_depth_middle=max(depths), context_dim=sum(t.width for t in text_encoders),
        use_linear_in_transformer=u["use_linear"], middle_block_attention=True, legacy=False,
        **(u["heads"] if heads else {"num_heads": -1, "num_head_channels": -1, **family.unet_heads}))
    config = ModelConfig(
        family=family, variant=variant, unet=unet,
        vae=dict(ddconfig=dict(double_z=True, z_channels=4, resolution=256, in_channels=3, out_ch=3, ch=32,
                               ch_mult=(1, 2, 2, 2), num_res_blocks=1, attn_resolutions=[], dropout=0.0), embed_dim=4),
        text_encoders=text_encoders, parameterization=parameterization, scale_factor=family.latent.scale_factor)
    if family.is_sdxl:
        config.vector_embed_dim = tiny["vector_embed_dim"]
        numbers = sum(1 if key == "aesthetic_score" else 2 for key in family.vector_inputs)
        pooled = sum(t.embed_dim for t in text_encoders if t.spec.pooled)
        unet.update(num_classes="sequential", adm_in_channels=pooled + numbers * config.vector_embed_dim)
    return config


def build_random_family_model(config, seed=0, device="cpu"):
    """Our model for `config` with random weights, in fp32 on `device` ("meta": shapes only, for detection tests)."""
    from modules import model_builder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_builder.build_model(config, device=device)
    return model.eval().requires_grad_(False)


def family_yaml(config):
    """The original training config's text for `config` (ldm's layout for SD1/SD2, sgm's for SDXL)."""
    import yaml
    unet = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.unet.items()}
    heads = lambda te: {"heads": te.heads}  # noqa: E731
    if config.family.is_sdxl:
        emb_models = []
        for te in config.text_encoders:
            target = "FrozenCLIPEmbedder" if te.spec.kind == "clip" else "FrozenOpenCLIPEmbedder2"
            params = dict(layer="hidden", layer_idx=te.layers - 1) if te.spec.kind == "clip" else dict(
                layer="penultimate", always_return_pooled=True, legacy=False)
            emb_models.append(dict(is_trainable=False, input_key="txt", target=f"sgm.modules.encoders.modules.{target}",
                                   params=params | heads(te)))
        for key in config.family.vector_inputs:
            emb_models.append(dict(is_trainable=False, input_key=key, target="sgm.modules.encoders.modules.ConcatTimestepEmbedderND",
                                   params=dict(outdim=config.vector_embed_dim)))
        params = dict(scale_factor=config.scale_factor, **({"parameterization": "v"} if config.parameterization == "v" else {}),
                      network_config=dict(target="sgm.modules.diffusionmodules.openaimodel.UNetModel", params=unet),
                      conditioner_config=dict(target="sgm.modules.GeneralConditioner", params=dict(emb_models=emb_models)))
        model = dict(target="sgm.models.diffusion.DiffusionEngine", params=params)
    else:
        te = config.text_encoders[0]
        target = "FrozenCLIPEmbedder" if te.spec.kind == "clip" else "FrozenOpenCLIPEmbedder"
        text_params = heads(te) | ({} if te.spec.kind == "clip" else dict(layer="penultimate", freeze=True))
        params = dict(linear_start=0.00085, linear_end=0.012, timesteps=1000, scale_factor=config.scale_factor,
                      conditioning_key=config.conditioning_key,
                      unet_config=dict(target="ldm.modules.diffusionmodules.openaimodel.UNetModel", params=unet),
                      cond_stage_config=dict(target=f"ldm.modules.encoders.modules.{target}", params=text_params))
        if config.parameterization == "v":
            params["parameterization"] = "v"
        model = dict(target="ldm.models.diffusion.ddpm.LatentDiffusion", params=params)
    return yaml.safe_dump({"model": model}, sort_keys=False)


def make_family_checkpoint(path, family_name, variant="base", heads=True, parameterization="eps", yaml=True,
                           dtype=torch.float32, seed=0, markers=()):
    """A tiny checkpoint of the family at `path` and, with `yaml`, its `<name>.yaml` (head counts, v-prediction).
    `markers` adds SDXL marker keys ("v_pred", "ztsnr"). Returns (path, config)."""
    config = family_config(family_name, variant=variant, heads=heads, parameterization=parameterization)
    model = build_random_family_model(config, seed=seed)
    sd = model_state_dict(model, dtype=dtype, with_schedule=not config.family.is_sdxl)
    for marker in markers:
        sd[marker] = torch.tensor([])
    save_state_dict(sd, path)
    if yaml:
        with open(os.path.splitext(str(path))[0] + ".yaml", "w", encoding="utf8") as file:
            file.write(family_yaml(config))
    return path, config


# The real widths (random weights), for the `full_size` parity tests.
FULL_FAMILY = {
    "sd2": dict(unet=dict(model_channels=320, channel_mult=(1, 2, 4, 4), num_res_blocks=2, transformer_depth=[1, 1, 1, 0],
                          heads=dict(num_heads=-1, num_head_channels=64), use_linear=True),
                text=[dict(kind="open_clip", width=1024, layers=24, heads=16, mlp_width=4096, embed_dim=1024)]),
    "sdxl": dict(unet=dict(model_channels=320, channel_mult=(1, 2, 4), num_res_blocks=2, transformer_depth=[0, 2, 10],
                           heads=dict(num_heads=-1, num_head_channels=64), use_linear=True),
                 text=[dict(kind="clip", width=768, layers=12, heads=12, mlp_width=3072),
                       dict(kind="open_clip", width=1280, layers=32, heads=20, mlp_width=5120, embed_dim=1280)],
                 vector_embed_dim=256),
    "sdxl_refiner": dict(unet=dict(model_channels=384, channel_mult=(1, 2, 4, 4), num_res_blocks=2, transformer_depth=[0, 4, 4, 0],
                                   heads=dict(num_heads=-1, num_head_channels=64), use_linear=True),
                         text=[dict(kind="open_clip", width=1280, layers=32, heads=20, mlp_width=5120, embed_dim=1280)],
                         vector_embed_dim=256),
}
FULL_VAE = dict(double_z=True, z_channels=4, resolution=256, in_channels=3, out_ch=3, ch=128, ch_mult=(1, 2, 4, 4),
                num_res_blocks=2, attn_resolutions=[], dropout=0.0)


def full_size_config(family_name, parameterization="eps"):
    """The ModelConfig of the family at its real widths (SD2 768-v, SDXL base, SDXL refiner)."""
    config = family_config(family_name, parameterization=parameterization, tiny=FULL_FAMILY[family_name])
    config.vae = dict(ddconfig=dict(FULL_VAE), embed_dim=4)
    return config


def full_size_state_dict(family_name, seed=0, dtype=torch.float16):
    """A random-weight checkpoint dict of the family at its real widths, built directly in `dtype` (an SDXL base in
    fp16 is 6.9 GB: no fp32 copy is ever made). For load benchmarks; take the big-memory lock around it."""
    config = full_size_config(family_name)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = build_random_family_model(config, seed=seed)
    finally:
        torch.set_default_dtype(default)
    return model_state_dict(model, dtype=dtype, with_schedule=not config.family.is_sdxl)
