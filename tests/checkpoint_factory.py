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
