"""Train the demo checkpoint: a small SD1-architecture model that draws coloured shapes where the prompt says.

    venv/bin/python -m demo_model.train --out models/Stable-diffusion/demo-shapes.safetensors --seed 0

Phases: (1) the VAE (8x downsampling, 4 latent channels) learns to reconstruct the shape pictures; its latents are
then shifted and scaled inside quant_conv/post_quant_conv so that latent * 0.18215 has zero mean and unit spread,
as SD's fixed scale_factor expects. (2) the UNet and a narrow, shallow CLIP text model learn eps-prediction jointly
on the SD1 scaled-linear schedule, with 10% of captions dropped for classifier-free guidance. The architecture
classes are the project's own (ldm/), the keys SD1's, so the ordinary loader reads the result.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from demo_model import shapes_data  # noqa: E402

SCALE_FACTOR = 0.18215
GROUP_PAIR_OFFSET = 5.0
BOS, EOS = 49406, 49407

# 64 channels: GroupNorm's 32 groups then hold 2 channels each; at 32 channels each channel would be normalised on
# its own and a flat colour region would lose its colour.
VAE_CONFIG = dict(double_z=True, z_channels=4, resolution=64, in_channels=3, out_ch=3, ch=64, ch_mult=(1, 1, 1, 1),
                  num_res_blocks=1, attn_resolutions=[], dropout=0.0)
UNET_CONFIG = dict(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1,
                   attention_resolutions=(1, 2, 4), num_heads=8, context_dim=64, transformer_depth=1)
CLIP_CONFIG = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=256)


def log(message: str):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def build_models():
    from ldm.models.autoencoder import AutoencoderKL
    from ldm.modules.diffusionmodules.openaimodel import UNetModel
    from ldm.modules.encoders.modules import FrozenCLIPEmbedder, sd1_clip_config

    vae = AutoencoderKL(VAE_CONFIG, embed_dim=4)
    unet = UNetModel(**UNET_CONFIG)
    text = FrozenCLIPEmbedder(config=sd1_clip_config(**CLIP_CONFIG), freeze=False)
    return vae, unet, text


def zero_init_residual_outputs(unet):
    """Zero the last layer of every residual branch (as the original UNet initialises): each block starts as the
    identity, which trains faster and steadier."""
    from ldm.modules.attention import SpatialTransformer
    from ldm.modules.diffusionmodules.openaimodel import ResBlock
    for module in unet.modules():
        if isinstance(module, ResBlock):
            torch.nn.init.zeros_(module.out_layers[-1].weight)
            torch.nn.init.zeros_(module.out_layers[-1].bias)
        elif isinstance(module, SpatialTransformer):
            torch.nn.init.zeros_(module.proj_out.weight)
            torch.nn.init.zeros_(module.proj_out.bias)
    torch.nn.init.zeros_(unet.out[-1].weight)
    torch.nn.init.zeros_(unet.out[-1].bias)


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]."""
    return images_uint8.permute(0, 3, 1, 2).float() / 127.5 - 1.0


# ---- phase 1: the VAE --------------------------------------------------------------------------------------------

def train_vae(vae, images: torch.Tensor, steps: int, batch: int, crop: int, lr: float, generator: torch.Generator):
    """Reconstruction (L1 + MSE) plus a tiny KL term. Trained on crops aligned to the 8-pixel latent grid: the mid
    attention's output projection is held at zero, so the network is purely convolutional and crops teach it the
    same thing as whole pictures at a fraction of the cost."""
    # Residual branches start at zero (each block the identity): the deep VAE then trains as fast as a shallow one.
    from ldm.modules.diffusionmodules.model import ResnetBlock
    for module in vae.modules():
        if isinstance(module, ResnetBlock):
            torch.nn.init.zeros_(module.conv2.weight)
            torch.nn.init.zeros_(module.conv2.bias)
    for attn in (vae.encoder.mid.attn_1, vae.decoder.mid.attn_1):
        torch.nn.init.zeros_(attn.proj_out.weight)
        torch.nn.init.zeros_(attn.proj_out.bias)
        attn.proj_out.requires_grad_(False)
    # GroupNorm right before each conv_out (norm_out) normalises every group of two channels over the picture; on
    # flat colour regions that would erase the colour itself. A large constant in the second channel of each pair
    # makes the normalisation close to a fixed affine map, so absolute values pass from the start.
    with torch.no_grad():
        for block in (vae.encoder.mid.block_2, vae.decoder.up[0].block[-1]):
            block.conv2.bias[1::2] = GROUP_PAIR_OFFSET
    # Start with a near-deterministic posterior (std ~0.02): early on, unit-variance sampling noise would drown
    # the encoder's still-small means and the decoder would learn nothing.
    with torch.no_grad():
        vae.quant_conv.bias[4:] = -8.0
    params = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    size = images.shape[1]
    offsets = list(range(0, size - crop + 1, 8))
    start = time.time()
    for step in range(steps):
        lr_now = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        index = torch.randint(0, images.shape[0], (batch,), generator=generator)
        oy, ox = (offsets[int(i)] for i in torch.randint(0, len(offsets), (2,), generator=generator))
        x = to_model_range(images[index, oy:oy + crop, ox:ox + crop])
        posterior = vae.encode(x)
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        reconstruction = vae.decode(z)
        rec = (reconstruction - x).abs().mean() + F.mse_loss(reconstruction, x)
        kl = posterior.kl().mean() / x[0].numel()
        loss = rec + 1e-4 * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 25 == 0 or step == steps - 1:
            log(f"vae step {step}/{steps} rec {rec.item():.4f} kl {kl.item():.3f} ({time.time() - start:.0f}s)")


@torch.no_grad()
def encode_all(vae, images: torch.Tensor, batch: int = 64):
    means, stds = [], []
    for i in range(0, images.shape[0], batch):
        posterior = vae.encode(to_model_range(images[i:i + batch]))
        means.append(posterior.mean)
        stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def normalise_latents(vae, means: torch.Tensor, stds: torch.Tensor):
    """Fold a per-channel shift and scale into quant_conv and post_quant_conv so that the latents the UNet sees
    (latent * 0.18215) have zero mean and unit standard deviation; the decoder's output is unchanged."""
    centre = means.mean(dim=(0, 2, 3))
    spread = means.std(dim=(0, 2, 3))
    k = 1.0 / (SCALE_FACTOR * spread)
    qc, pqc = vae.quant_conv, vae.post_quant_conv
    qc.weight[:4] *= k[:, None, None, None]
    qc.bias[:4] = (qc.bias[:4] - centre) * k
    qc.bias[4:] += 2 * torch.log(k)  # log-variance of the scaled latent
    pqc.bias += (pqc.weight[:, :, 0, 0] @ centre)
    pqc.weight /= k[None, :, None, None]
    return (means - centre[None, :, None, None]) * k[None, :, None, None], stds * k[None, :, None, None]


def finetune_decoder(vae, images: torch.Tensor, steps: int, batch: int, lr: float, generator: torch.Generator):
    """Whole pictures through the frozen encoder, the decoder (and post_quant_conv) trained to reconstruct them.

    GroupNorm statistics over a crop differ from those over a whole picture, so a decoder trained on crops smears
    whole pictures; this pass fixes that without moving the latents the UNet learned."""
    vae.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    for p in params:
        p.requires_grad_(True)
    for attn in (vae.decoder.mid.attn_1,):
        attn.proj_out.requires_grad_(False)
    params = [p for p in params if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    start = time.time()
    for step in range(steps):
        lr_now = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        index = torch.randint(0, images.shape[0], (batch,), generator=generator)
        x = to_model_range(images[index])
        with torch.no_grad():
            posterior = vae.encode(x)
            z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        reconstruction = vae.decode(z)
        loss = (reconstruction - x).abs().mean() + F.mse_loss(reconstruction, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 25 == 0 or step == steps - 1:
            log(f"decoder step {step}/{steps} rec {loss.item():.4f} ({time.time() - start:.0f}s)")
    vae.requires_grad_(False)


# ---- phase 2: UNet and text encoder ------------------------------------------------------------------------------

class CaptionTokens:
    """Captions -> (B, 77) token ids exactly as the web UI's prompt encoder builds them: BOS, up to 75 tokens,
    EOS, EOS padding."""

    def __init__(self):
        from modules.clip_tokenizer import load_clip_tokenizer
        self.tokenizer = load_clip_tokenizer()
        self.cache = {}

    def __call__(self, captions) -> torch.Tensor:
        rows = []
        for caption in captions:
            ids = self.cache.get(caption)
            if ids is None:
                body = self.tokenizer(caption, add_special_tokens=False, truncation=False)["input_ids"][:75]
                ids = [BOS] + body + [EOS] * (76 - len(body))
                self.cache[caption] = ids
            rows.append(ids)
        return torch.tensor(rows, dtype=torch.long)


def sd1_alphas_cumprod() -> torch.Tensor:
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


def train_diffusion(unet, text, latents, latent_stds, scenes, steps: int, batch: int, lr: float, seed: int,
                    generator: torch.Generator, save_every: int = 0, save_fn=None):
    """eps-prediction on the SD1 schedule, min-SNR(5) loss weighting, 10% empty captions for CFG."""
    zero_init_residual_outputs(unet)
    tokens_of = CaptionTokens()
    caption_rng = random.Random(seed + 1)
    alphas_cumprod = sd1_alphas_cumprod()
    snr = alphas_cumprod / (1 - alphas_cumprod)
    weights = torch.clamp(snr, max=5.0) / snr
    params = list(unet.parameters()) + list(text.transformer.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    ema = copy.deepcopy((unet, text.transformer))
    for p in list(ema[0].parameters()) + list(ema[1].parameters()):
        p.requires_grad_(False)
    start = time.time()
    running = None
    for step in range(steps):
        warm = min(1.0, (step + 1) / 50)
        lr_now = lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        index = torch.randint(0, latents.shape[0], (batch,), generator=generator)
        captions = [shapes_data.caption_scene(caption_rng, scenes[int(i)]) if caption_rng.random() >= 0.1 else ""
                    for i in index]
        context = text.transformer(input_ids=tokens_of(captions)).last_hidden_state
        x0 = SCALE_FACTOR * (latents[index] + latent_stds[index] * torch.randn(latents[index].shape, generator=generator))
        t = torch.randint(0, 1000, (batch,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        prediction = unet(x_t, t, context)
        loss = (weights[t] * ((prediction - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        decay = min(0.995, (1 + step) / (10 + step))
        with torch.no_grad():
            for model, averaged in zip((unet, text.transformer), ema):
                for p, q in zip(model.parameters(), averaged.parameters()):
                    q.lerp_(p, 1 - decay)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 25 == 0 or step == steps - 1:
            log(f"diffusion step {step}/{steps} loss {running:.4f} lr {lr_now:.2e} ({time.time() - start:.0f}s)")
        if save_every and save_fn and (step + 1) % save_every == 0 and step + 1 < steps:
            save_fn(ema, step + 1)
    return ema


# ---- the checkpoint ------------------------------------------------------------------------------------------------

def assemble(vae, unet, text_transformer):
    """A LatentDiffusion from the trained parts: its state dict has SD1's keys."""
    from ldm.models.diffusion.ddpm import LatentDiffusion
    from ldm.modules.encoders.modules import FrozenCLIPEmbedder, sd1_clip_config
    text = FrozenCLIPEmbedder(config=sd1_clip_config(**CLIP_CONFIG))
    text.transformer.load_state_dict(text_transformer.state_dict())
    return LatentDiffusion(unet=unet, first_stage_model=vae, cond_stage_model=text)


def save_checkpoint(model, path: str, metadata: dict):
    from safetensors.torch import save_file
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model."))}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    save_file(state, tmp, metadata={k: str(v) for k, v in metadata.items()})
    os.replace(tmp, path)
    log(f"saved {path} ({os.path.getsize(path) / 1e6:.1f} MB, {len(state)} tensors)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=6000, help="training pictures (captions are re-worded each use)")
    parser.add_argument("--size", type=int, default=64, help="native resolution")
    parser.add_argument("--vae-steps", type=int, default=600)
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument("--vae-crop", type=int, default=24)
    parser.add_argument("--vae-lr", type=float, default=2e-3)
    parser.add_argument("--unet-steps", type=int, default=600)
    parser.add_argument("--unet-batch", type=int, default=128)
    parser.add_argument("--unet-lr", type=float, default=1.5e-3)
    parser.add_argument("--save-every", type=int, default=100, help="write the EMA weights so far every N steps")
    parser.add_argument("--decoder-steps", type=int, default=300, help="whole-picture decoder fine-tuning, last")
    parser.add_argument("--decoder-batch", type=int, default=8)
    parser.add_argument("--decoder-lr", type=float, default=5e-4)
    parser.add_argument("--decoder-from", default=None,
                        help="skip training: load this checkpoint and only run the decoder fine-tuning on it")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    began = time.time()
    log(f"arguments: {json.dumps(vars(args))}")

    scenes, images = shapes_data.make_dataset(args.images, seed=args.seed, size=args.size)
    images = torch.from_numpy(images)
    log(f"dataset: {len(scenes)} pictures at {args.size}x{args.size}")

    metadata = {"modelspec.title": "demo-shapes", "modelspec.architecture": "stable-diffusion-v1",
                "demo_model.command": "venv/bin/python -m demo_model.train " + " ".join(sys.argv[1:] if argv is None else argv),
                "demo_model.seed": args.seed, "demo_model.resolution": args.size}
    if args.decoder_from:
        decoder_only(args, images, metadata)
        return

    vae, unet, text = build_models()
    train_vae(vae, images, args.vae_steps, args.vae_batch, args.vae_crop, args.vae_lr, generator)
    vae.eval()
    means, stds = encode_all(vae, images)
    latents, latent_stds = normalise_latents(vae, means, stds)
    vae.requires_grad_(False)
    log(f"latents {tuple(latents.shape)}: scaled mean {float(latents.mean() * SCALE_FACTOR):.3f} "
        f"std {float(latents.std() * SCALE_FACTOR):.3f}")

    def save_ema(ema, step):
        save_checkpoint(assemble(vae, ema[0], ema[1]), args.out, {**metadata, "demo_model.steps": step})

    ema = train_diffusion(unet, text, latents, latent_stds, scenes, args.unet_steps, args.unet_batch, args.unet_lr,
                          args.seed, generator, args.save_every, save_ema)
    save_ema(ema, args.unet_steps)
    if args.decoder_steps:
        finetune_decoder(vae, images, args.decoder_steps, args.decoder_batch, args.decoder_lr,
                         torch.Generator().manual_seed(args.seed + 2))
        save_ema(ema, args.unet_steps)
    log(f"done in {(time.time() - began) / 60:.1f} min")


def decoder_only(args, images, metadata):
    """Load a checkpoint this script wrote, fine-tune its decoder on whole pictures, write it to --out."""
    from safetensors import safe_open
    vae, unet, text = build_models()
    model = assemble(vae, unet, text.transformer)
    with safe_open(args.decoder_from, framework="pt") as f:
        state = {k: f.get_tensor(k).float() for k in f.keys()}
        old_metadata = f.metadata() or {}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(("betas", "alphas", "sqrt", "log_", "posterior")) for k in missing):
        raise ValueError(f"--decoder-from: {args.decoder_from} is not a checkpoint of this architecture "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    finetune_decoder(model.first_stage_model, images, args.decoder_steps, args.decoder_batch, args.decoder_lr,
                     torch.Generator().manual_seed(args.seed + 2))
    metadata = {**old_metadata, "demo_model.decoder_command": metadata["demo_model.command"]}
    save_checkpoint(model, args.out, metadata)


if __name__ == "__main__":
    main()
