"""Train the demo checkpoint: a small SD1-architecture model that draws coloured shapes where the prompt says.

    venv/bin/python -m demo_model.train --seed 0      # writes models/Stable-diffusion/demo-shapes.safetensors

The defaults are the shipped file's recipe, all phases in one command. Phases: (1) the VAE (8x downsampling,
4 latent channels) learns to reconstruct the shape pictures; its latents are then shifted and scaled inside
quant_conv/post_quant_conv so that latent * 0.18215 has zero mean and unit spread, as SD's fixed scale_factor
expects. (2) the UNet and a narrow, shallow CLIP text model learn eps-prediction jointly
on the SD1 scaled-linear schedule, with 10% of captions dropped for classifier-free guidance, from --high-t-from on
weighting the noisiest timesteps, where the layout is decided; --layout-steps then restarts from the EMA weights
for a sharper layout. (3) the decoder alone is fine-tuned on sharper outlines. The architecture
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
# SD1's schedule leaves a little of the picture in its noisiest training inputs, so a model learns to read the
# background colour from the noise's mean, and at inference (pure noise) draws the background the seed's noise
# suggests rather than the prompt's. A random per-channel offset in the training noise ("offset noise") makes the
# mean of the input unreliable, so the background follows the prompt.
OFFSET_NOISE = 0.25  # beside the 8x8 noise mean's own spread of 1/8 and the leak of 0.07 x the background
STRUCTURAL_LR_SCALE = 0.05  # the VAE layers that carry its colour encoding learn 20x slower
BOS, EOS = 49406, 49407
# The layout stage's EMA averages ~30 steps, not ~200: a restart from a run whose ~200-step EMA put 61% of held-out
# shapes in the right cell put 94% there after 100 steps, its short average near the current weights.
LAYOUT_EMA_DECAY = 0.97

# 64 channels: GroupNorm's 32 groups then hold 2 channels each; at 32 channels each channel would be normalised on
# its own and a flat colour region would lose its colour.
VAE_CONFIG = dict(double_z=True, z_channels=4, resolution=64, in_channels=3, out_ch=3, ch=64, ch_mult=(1, 1, 1, 1),
                  num_res_blocks=1, attn_resolutions=[], dropout=0.0)
UNET_CONFIG = dict(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 4), num_res_blocks=1,
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


def init_text_embeddings(text, generator: torch.Generator):
    """Token embeddings large beside everything else in the residual stream. With CLIP's usual init (std 0.02) the
    first attention layer's output (std ~1) swamps them: every position becomes an average of the prompt so far
    and two prompts give nearly the same context, which leaves the UNet nearly unconditional."""
    embeddings = text.transformer.text_model.embeddings
    with torch.no_grad():
        embeddings.token_embedding.weight.copy_(
            torch.randn(embeddings.token_embedding.weight.shape, generator=generator))
        embeddings.position_embedding.weight.copy_(
            0.2 * torch.randn(embeddings.position_embedding.weight.shape, generator=generator))


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


def use_channels_last(module):
    """The VAE's convolutions run at full resolution; in channels-last layout oneDNN runs its training step in half
    the time on the CPU (0.42 s vs 0.83 s at batch 8). The pictures arrive channels-last already (from NHWC uint8).
    The UNet's 8x8 latents gain nothing (0.72 s vs 0.58 s per step), so it stays as it is."""
    module.to(memory_format=torch.channels_last)


# ---- phase 1: the VAE --------------------------------------------------------------------------------------------

def scheduled_lr(lr: float, step: int, steps: int) -> float:
    """50 steps of linear warm-up, then a cosine down to a tenth: every phase uses it."""
    return lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))


def set_lr(optimizer, lr_now: float):
    for group in optimizer.param_groups:
        group["lr"] = lr_now * group.get("scale", 1.0)


def two_speed_optimizer(vae, trained, lr: float):
    """AdamW over `trained`, the layers that carry the VAE's colour encoding at STRUCTURAL_LR_SCALE of the rate."""
    from demo_model import vae_init
    structural = {id(p) for p in vae_init.structural_parameters(vae)}
    return torch.optim.AdamW([
        {"params": [p for p in trained if id(p) not in structural], "scale": 1.0},
        {"params": [p for p in trained if id(p) in structural], "scale": STRUCTURAL_LR_SCALE}],
        lr=lr, weight_decay=0.0)


def train_vae(vae, images: torch.Tensor, steps: int, batch: int, lr: float, generator: torch.Generator, judge_every: int = 200):
    """Reconstruction (L1 + MSE) plus a tiny KL term, on whole pictures."""
    # Start as an 8x8 block-average autoencoder whose colours survive GroupNorm (see vae_init): from random
    # weights flat colours alone take the VAE tens of thousands of steps. Its calibration is for whole pictures,
    # so crops would mislead it.
    from demo_model import vae_init
    vae_init.init_block_average_autoencoder(vae, images.shape[1])
    vae_init.hold_colour_readout(vae)
    optimizer = two_speed_optimizer(vae, list(vae.parameters()), lr)
    start = time.time()
    for step in range(steps):
        set_lr(optimizer, scheduled_lr(lr, step, steps))
        index = torch.randint(0, images.shape[0], (batch,), generator=generator)
        # the crop offsets earlier versions drew, still drawn so that seed 0 reproduces the shipped file
        torch.randint(0, 1, (2,), generator=generator)
        x = to_model_range(images[index])
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
        if judging_step(step, steps, judge_every):
            log(f"vae step {step}: the judge reads its reconstructions of held-out scenes as {judge_reconstructions(vae)}")


def judging_step(step: int, steps: int, judge_every: int) -> bool:
    """Every judge_every steps and at the last one; 0: never (the judge decodes 108 scenes: seconds on a CPU)."""
    return judge_every > 0 and (step % judge_every == 0 or step == steps - 1)


@torch.no_grad()
def judge_reconstructions(vae, per_combo: int = 1) -> dict:
    """Share of held-out scenes whose VAE reconstruction the judge reads right (colour, shape, position)."""
    from demo_model import judge
    scenes = shapes_data.evaluation_scenes(per_combo)
    pictures = torch.from_numpy(np.stack([shapes_data.render_scene(s) for s in scenes]))
    was_training = vae.training
    vae.eval()
    decoded = vae.decode(vae.encode(to_model_range(pictures)).mean)
    vae.train(was_training)
    decoded = ((decoded.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    right = {"colour": 0, "shape": 0, "position": 0}
    for scene, picture in zip(scenes, decoded):
        found, obj = judge.judge(picture).main, scene.objects[0]
        for key in right:
            right[key] += int(found is not None and getattr(found, key) == getattr(obj, key))
    return {key: round(value / len(scenes), 3) for key, value in right.items()}


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


def edge_weights(x: torch.Tensor, weight: float = 4.0) -> torch.Tensor:
    """Per-pixel loss weights, `weight` times larger within 2 pixels of a colour edge: edges are a small share of a
    picture's pixels but all of its shapes' outlines."""
    edges = (x[..., 1:, :] - x[..., :-1, :]).abs().sum(1, keepdim=True)
    edges = F.pad(edges, (0, 0, 0, 1)) + F.pad((x[..., :, 1:] - x[..., :, :-1]).abs().sum(1, keepdim=True), (0, 1, 0, 0))
    near = F.max_pool2d((edges > 0.05).float(), 5, stride=1, padding=2)
    return 1.0 + (weight - 1.0) * near


def finetune_decoder(vae, images: torch.Tensor, latents: torch.Tensor, latent_stds: torch.Tensor, steps: int,
                     batch: int, lr: float, generator: torch.Generator, judge_every: int = 200):
    """The decoder alone, on whole pictures from their (fixed) latents, with edges weighted up: sharper outlines
    without moving any latent the UNet learned."""
    vae.requires_grad_(False)
    vae.decoder.requires_grad_(True)
    optimizer = two_speed_optimizer(vae, list(vae.decoder.parameters()), lr)
    start = time.time()
    for step in range(steps):
        set_lr(optimizer, scheduled_lr(lr, step, steps))
        index = torch.randint(0, images.shape[0], (batch,), generator=generator)
        x = to_model_range(images[index])
        z = latents[index] + latent_stds[index] * torch.randn(latents[index].shape, generator=generator)
        reconstruction = vae.decode(z)
        weights = edge_weights(x)
        error = reconstruction - x
        loss = ((error.abs() + error ** 2) * weights).mean() / weights.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 25 == 0 or step == steps - 1:
            log(f"decoder step {step}/{steps} rec {loss.item():.4f} ({time.time() - start:.0f}s)")
        if judging_step(step, steps, judge_every):
            log(f"decoder step {step}: the judge reads its reconstructions of held-out scenes as "
                f"{judge_reconstructions(vae)}")
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


def training_noise(shape, generator: torch.Generator) -> torch.Tensor:
    """White noise plus offset noise: one random constant per channel (see OFFSET_NOISE)."""
    batch, channels = shape[:2]
    noise = torch.randn(shape, generator=generator)
    return noise + OFFSET_NOISE * torch.randn((batch, channels, 1, 1), generator=generator)


def loss_weights(alphas_cumprod: torch.Tensor, high_noise_weight: float) -> torch.Tensor:
    """Per-timestep weights of the eps loss: min-SNR(5), raised at high noise to 1/SNR capped at high_noise_weight.
    An eps error at high noise is a picture error times sqrt(SNR), so plain eps loss hardly cares whether the
    noisiest steps, which decide the layout, get the picture right; weighting them up makes them."""
    snr = alphas_cumprod / (1 - alphas_cumprod)
    weights = torch.clamp(snr, max=5.0) / snr
    if high_noise_weight:
        weights = torch.maximum(weights, torch.clamp(1.0 / snr, max=high_noise_weight))
    return weights


def training_timesteps(batch: int, generator: torch.Generator, high_share: float) -> torch.Tensor:
    """Uniform timesteps, except that a high_share of the batch comes from the noisiest 40% (t >= 600), where the
    layout is decided: more of each step's compute goes to learning where things go."""
    t = torch.randint(0, 1000, (batch,), generator=generator)
    high = torch.randint(600, 1000, (batch,), generator=generator)
    pick = torch.rand((batch,), generator=generator) < high_share
    return torch.where(pick, high, t)


def train_diffusion(unet, text, latents, latent_stds, scenes, steps: int, batch: int, lr: float, seed: int,
                    generator: torch.Generator, save_every: int = 0, save_fn=None, resumed: bool = False,
                    high_noise_weight: float = 0.0, high_t_share: float = 0.0, caption_seed: int | None = None,
                    ema_decay: float = 0.995, high_t_from: int = 0):
    """eps-prediction on the SD1 schedule with offset noise, min-SNR(5) loss weighting (raised at high noise by
    high_noise_weight, with a high_t_share of each batch drawn from the noisiest timesteps), 10% empty captions for
    classifier-free guidance; the high-noise settings apply from step high_t_from on. Returns the EMA weights."""
    if not resumed:
        zero_init_residual_outputs(unet)
    tokens_of = CaptionTokens()
    caption_rng = random.Random(seed + 1 if caption_seed is None else caption_seed)
    alphas_cumprod = sd1_alphas_cumprod()
    plain_weights = loss_weights(alphas_cumprod, 0.0)
    layout_weights = loss_weights(alphas_cumprod, high_noise_weight)
    params = list(unet.parameters()) + list(text.transformer.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    ema = copy.deepcopy((unet, text.transformer))
    ema_params = list(ema[0].parameters()) + list(ema[1].parameters())
    for p in ema_params:
        p.requires_grad_(False)
    start = time.time()
    running = None
    for step in range(steps):
        lr_now = scheduled_lr(lr, step, steps)
        set_lr(optimizer, lr_now)
        index = torch.randint(0, latents.shape[0], (batch,), generator=generator)
        captions = [shapes_data.caption_scene(caption_rng, scenes[int(i)]) if caption_rng.random() >= 0.1 else ""
                    for i in index]
        context = text.transformer(input_ids=tokens_of(captions)).last_hidden_state
        x0 = SCALE_FACTOR * (latents[index] + latent_stds[index] * torch.randn(latents[index].shape, generator=generator))
        layout_stage = step >= high_t_from
        weights = layout_weights if layout_stage else plain_weights
        t = (training_timesteps(batch, generator, high_t_share) if high_t_share and layout_stage
             else torch.randint(0, 1000, (batch,), generator=generator))
        noise = training_noise(x0.shape, generator)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        prediction = unet(x_t, t, context)
        loss = (weights[t] * ((prediction - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - decay)
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
    parser.add_argument("--vae-steps", type=int, default=1200)
    parser.add_argument("--vae-batch", type=int, default=8)
    parser.add_argument("--vae-lr", type=float, default=5e-4)
    parser.add_argument("--unet-steps", type=int, default=1600)
    parser.add_argument("--unet-batch", type=int, default=128)
    parser.add_argument("--unet-lr", type=float, default=1.5e-3)
    parser.add_argument("--save-every", type=int, default=400, help="write the EMA weights so far every N steps")
    parser.add_argument("--decoder-steps", type=int, default=1000, help="decoder fine-tuning on whole pictures, last")
    parser.add_argument("--decoder-batch", type=int, default=8)
    parser.add_argument("--decoder-lr", type=float, default=5e-4)
    parser.add_argument("--judge-every", type=int, default=200,
                        help="log the judge's reading of the VAE's held-out reconstructions every N steps (0: never)")
    parser.add_argument("--resume", default=None, metavar="CHECKPOINT",
                        help="phase 2 starts from this checkpoint's UNet and text encoder (a second stage)")
    parser.add_argument("--layout-steps", type=int, default=0,
                        help="a second stage after --unet-steps that teaches where shapes go: it starts from the first "
                             "stage's EMA weights with a fresh optimizer, learning-rate warm-up and EMA")
    parser.add_argument("--layout-lr", type=float, default=1e-3)
    parser.add_argument("--high-noise-weight", type=float, default=200.0,
                        help="layout stage: the eps-loss weight of the noisiest timesteps is 1/SNR up to this")
    parser.add_argument("--high-t-share", type=float, default=0.5,
                        help="layout stage: share of each batch drawn from the noisiest timesteps (t >= 600)")
    parser.add_argument("--high-t-from", type=int, default=850,
                        help="apply --high-t-share and --high-noise-weight in the first stage too, from this step on "
                             "(a step past --unet-steps keeps that stage plain)")
    parser.add_argument("--vae-out", default=None, help="also write the phase-1 VAE (normalised) to this file")
    parser.add_argument("--vae-from", default=None, help="skip phase 1: use the VAE a --vae-out run wrote")
    parser.add_argument("--assemble", default=None, metavar="CHECKPOINT",
                        help="train nothing: write CHECKPOINT's UNet and text encoder with the --vae-from VAE to --out")
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
                "demo_model.seed": args.seed, "modelspec.resolution": f"{args.size}x{args.size}"}
    if args.assemble:
        assemble_files(args.assemble, args.vae_from, args.out, metadata)
        return

    vae, unet, text = build_models()
    use_channels_last(vae)
    if args.vae_from:
        load_vae(vae, args.vae_from)
        log(f"VAE loaded from {args.vae_from} (phase 1 skipped)")
    else:
        train_vae(vae, images, args.vae_steps, args.vae_batch, args.vae_lr, generator, args.judge_every)
    vae.eval()
    means, stds = encode_all(vae, images)
    if not args.vae_from:  # a loaded VAE was normalised before it was saved
        means, stds = normalise_latents(vae, means, stds)
        if args.vae_out:
            save_vae(vae, args.vae_out, metadata)
    latents, latent_stds = means, stds
    vae.requires_grad_(False)
    log(f"latents {tuple(latents.shape)}: scaled mean {float(latents.mean() * SCALE_FACTOR):.3f} "
        f"std {float(latents.std() * SCALE_FACTOR):.3f}")

    ema = None
    if args.unet_steps or args.layout_steps:
        # Phase 2 draws from its own seeded generator: the same whether phase 1 ran here or was loaded.
        generator = torch.Generator().manual_seed(args.seed + 1)
        steps_before = 0
        if args.resume:
            load_unet_and_text(unet, text, args.resume)
            steps_before, resumed_command = resumed_history(args.resume)
            metadata["demo_model.resumed_from_command"] = resumed_command  # the file's recipe is both commands
            log(f"UNet and text encoder loaded from {args.resume} ({steps_before} steps trained)")
        else:
            init_text_embeddings(text, generator)

        def save_ema(ema, step):
            save_checkpoint(assemble(vae, ema[0], ema[1]), args.out,
                            {**metadata, "demo_model.steps": steps_before + step})

        if args.unet_steps:
            # what first (colour, shape), then from --high-t-from on where (the layout settings), in one stage
            ema = train_diffusion(unet, text, latents, latent_stds, scenes, args.unet_steps, args.unet_batch,
                                  args.unet_lr, args.seed, generator, args.save_every, save_ema, bool(args.resume),
                                  high_noise_weight=args.high_noise_weight, high_t_share=args.high_t_share,
                                  high_t_from=args.high_t_from)
            save_ema(ema, args.unet_steps)
        if args.layout_steps:
            # Restart from the EMA weights, as a --resume run would: where the first stage continued into the layout
            # settings with its optimizer, decayed learning rate and slow EMA, 750 steps placed 61% of held-out
            # shapes right; restarted, 100 more steps placed 94%.
            if ema is not None:
                unet.load_state_dict(ema[0].state_dict())
                text.transformer.load_state_dict(ema[1].state_dict())

            def save_layout_ema(ema, step):
                save_ema(ema, args.unet_steps + step)

            ema = train_diffusion(unet, text, latents, latent_stds, scenes, args.layout_steps, args.unet_batch,
                                  args.layout_lr, args.seed, generator, args.save_every, save_layout_ema,
                                  resumed=True, high_noise_weight=args.high_noise_weight,
                                  high_t_share=args.high_t_share, caption_seed=args.seed + 3,
                                  ema_decay=LAYOUT_EMA_DECAY)
            save_ema(ema, args.unet_steps + args.layout_steps)
    if args.decoder_steps:
        # Phase 3 only sharpens the decoder: the encoder, hence every latent phase 2 learned, stays as it is.
        finetune_decoder(vae, images, latents, latent_stds, args.decoder_steps, args.decoder_batch, args.decoder_lr,
                         torch.Generator().manual_seed(args.seed + 2), args.judge_every)
        if ema is not None:
            save_ema(ema, args.unet_steps + args.layout_steps)
        elif args.vae_out:
            save_vae(vae, args.vae_out, metadata)
    log(f"done in {(time.time() - began) / 60:.1f} min")


def load_parts(checkpoint: str, prefixes: dict):
    """Load each module from the checkpoint's tensors under its key prefix ("" for a file of one module's keys)."""
    from safetensors import safe_open
    with safe_open(checkpoint, framework="pt") as f:
        for prefix, module in prefixes.items():
            state = {k[len(prefix):]: f.get_tensor(k).float() for k in f.keys() if k.startswith(prefix)}
            module.load_state_dict(state)


def load_unet_and_text(unet, text, checkpoint: str):
    load_parts(checkpoint, {"model.diffusion_model.": unet, "cond_stage_model.transformer.": text.transformer})


def resumed_history(checkpoint: str):
    """(UNet steps already trained, the command that trained them) from a checkpoint this script wrote; (0, "")
    for one it did not."""
    from safetensors import safe_open
    with safe_open(checkpoint, framework="pt") as f:
        metadata = f.metadata() or {}
    return int(metadata.get("demo_model.steps", 0)), metadata.get("demo_model.command", "")


def assemble_files(checkpoint: str, vae_path: str, out: str, metadata: dict):
    """--assemble: the UNet and text encoder of one run's checkpoint with the VAE of another (phases 2 and 3 can
    run side by side, one core each, both starting from phase 1's VAE)."""
    from safetensors import safe_open
    if not vae_path:
        raise SystemExit("--assemble needs --vae-from: the VAE to put into the checkpoint")
    vae, unet, text = build_models()
    model = assemble(vae, unet, text.transformer)
    with safe_open(checkpoint, framework="pt") as f:
        state = {k: f.get_tensor(k).float() for k in f.keys()}
        old_metadata = f.metadata() or {}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(("betas", "alphas", "sqrt", "log_", "posterior")) for k in missing):
        raise SystemExit(f"--assemble: {checkpoint} is not a checkpoint of this architecture")
    load_vae(model.first_stage_model, vae_path)
    save_checkpoint(model, out, {**old_metadata, "demo_model.assemble_command": metadata["demo_model.command"]})


def save_vae(vae, path: str, metadata: dict):
    from safetensors.torch import save_file
    state = {k: v.detach().float().contiguous() for k, v in vae.state_dict().items()}
    save_file(state, path, metadata={k: str(v) for k, v in metadata.items()})
    log(f"saved the VAE to {path}")


def load_vae(vae, path: str):
    """A --vae-out file, or the VAE inside a whole checkpoint (first_stage_model.*)."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        whole_checkpoint = any(k.startswith("first_stage_model.") for k in f.keys())
    load_parts(path, {"first_stage_model." if whole_checkpoint else "": vae})


if __name__ == "__main__":
    main()
