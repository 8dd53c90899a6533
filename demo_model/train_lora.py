"""Train the demo LoRA: it teaches the demo checkpoint a colour word it has never seen, "turquoise".

    nice venv/bin/python -m demo_model.train_lora --seed 0    # writes models/Lora/demo-turquoise.safetensors

The demo checkpoint (demo_model/train.py) knows nine colours; "turquoise" never appeared in its captions, so its
token is an untrained random vector and the picture's colour for it is an accident. The LoRA is trained, with the
checkpoint frozen, on pictures of turquoise shapes (and turquoise backgrounds) captioned the ways the checkpoint's
own data is captioned, mixed half and half with ordinary pictures so that the other colours stay as they were.

The file is an ordinary kohya LoRA: `lora_unet_<module>` / `lora_te_<module>` keys (module paths with "." -> "_";
the UNet's by the checkpoint's own module names, which every loader resolves, since the demo UNet's depth does not
match the diffusers block table), each with `lora_down.weight`, `lora_up.weight` and `alpha`, fp16, kohya's
`ss_*` training metadata. It patches every cross- and self-attention projection, feed-forward layer and
proj_in/proj_out of the UNet and every attention and MLP layer of the text encoder.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from demo_model import shapes_data, train  # noqa: E402

NEW_COLOUR = "turquoise"  # one CLIP token, never in the checkpoint's captions
NEW_RGB = (40, 210, 190)  # 137 or more from every palette colour (nearest: blue, green)
PALETTE = {**shapes_data.COLOURS, NEW_COLOUR: NEW_RGB}
LORA_NAME = "demo-turquoise"
DEFAULT_OUT = os.path.join(ROOT, "models", "Lora", LORA_NAME + ".safetensors")
DEFAULT_CHECKPOINT = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")

UNET_TARGETS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v",
                "attn2.to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out")
TEXT_TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")


def log(message: str):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- data --------------------------------------------------------------------------------------------------------

def contrasting(colour_rgb) -> list:
    return [b for b in shapes_data.COLOUR_NAMES
            if math.dist(PALETTE[b], colour_rgb) >= shapes_data.MIN_CONTRAST]


def sample_turquoise_scene(rng: random.Random) -> shapes_data.Scene:
    """A scene with turquoise in it: mostly a turquoise shape, sometimes a turquoise background."""
    shape, position, size = rng.choice(shapes_data.SHAPES), rng.choice(shapes_data.POSITIONS), rng.choice(shapes_data.SIZES)
    if rng.random() < 0.2:
        colour = rng.choice(contrasting(NEW_RGB))
        return shapes_data.Scene([shapes_data.make_object(rng, shape, colour, position, size)], NEW_COLOUR)
    obj = shapes_data.make_object(rng, shape, NEW_COLOUR, position, size)
    return shapes_data.Scene([obj], rng.choice(contrasting(NEW_RGB)))


def make_dataset(count: int, seed: int, size: int = 64):
    """count scenes, every other one with turquoise in it, the rest ordinary; images uint8 N x size x size x 3."""
    rng = random.Random(seed)
    scenes = [sample_turquoise_scene(rng) if i % 2 == 0 else shapes_data.sample_scene(rng) for i in range(count)]
    images = np.stack([shapes_data.render_scene(s, size, palette=PALETTE) for s in scenes])
    return scenes, images


# ---- the LoRA ----------------------------------------------------------------------------------------------------

class LoRAModule(torch.nn.Module):
    """base(x) + up(down(x)) * alpha / rank, for a Linear or a 1x1 Conv2d; up starts at zero (no change)."""

    def __init__(self, base: torch.nn.Module, rank: int, alpha: float):
        super().__init__()
        self.base = base
        if isinstance(base, torch.nn.Conv2d):
            if base.kernel_size != (1, 1):
                raise ValueError(f"LoRAModule: only 1x1 convolutions are patched, got {base.kernel_size}")
            self.down = torch.nn.Conv2d(base.in_channels, rank, 1, bias=False)
            self.up = torch.nn.Conv2d(rank, base.out_channels, 1, bias=False)
        else:
            self.down = torch.nn.Linear(base.in_features, rank, bias=False)
            self.up = torch.nn.Linear(rank, base.out_features, bias=False)
        torch.nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        torch.nn.init.zeros_(self.up.weight)
        self.alpha = float(alpha)
        self.scale = alpha / rank

    def forward(self, x):
        return self.base(x) + self.up(self.down(x)) * self.scale


def attach_loras(root: torch.nn.Module, targets, prefix: str, rank: int, alpha: float) -> dict:
    """Wrap each module of `root` whose path ends with a target in a LoRAModule; -> {kohya key prefix: LoRAModule}."""
    found = [(name, module) for name, module in root.named_modules() if name.endswith(targets)]
    loras = {}
    for name, module in found:
        parent_name, _, child = name.rpartition(".")
        parent = root.get_submodule(parent_name) if parent_name else root
        lora = LoRAModule(module, rank, alpha)
        setattr(parent, child, lora)
        loras[prefix + name.replace(".", "_")] = lora
    if not loras:
        raise RuntimeError(f"no module of {type(root).__name__} matched {targets}")
    return loras


def lora_state_dict(loras: dict) -> dict:
    """The kohya layout: KEY.lora_down.weight, KEY.lora_up.weight, KEY.alpha, in fp16."""
    state = {}
    for key, lora in loras.items():
        state[f"{key}.lora_down.weight"] = lora.down.weight.detach().to(torch.float16).contiguous()
        state[f"{key}.lora_up.weight"] = lora.up.weight.detach().to(torch.float16).contiguous()
        state[f"{key}.alpha"] = torch.tensor(lora.alpha, dtype=torch.float16)
    return state


def tag_frequency(captions) -> dict:
    """kohya's ss_tag_frequency: how often each comma-separated tag appeared, under one dataset name."""
    counts = collections.Counter(tag.strip() for caption in captions for tag in caption.split(",") if tag.strip())
    return {"shapes": dict(counts.most_common(40))}


def save_lora(loras: dict, path: str, metadata: dict):
    from safetensors.torch import save_file
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    save_file(lora_state_dict(loras), tmp, metadata={k: str(v) for k, v in metadata.items()})
    os.replace(tmp, path)
    log(f"saved {path} ({os.path.getsize(path) / 1e6:.2f} MB, {len(loras)} modules)")


# ---- training ----------------------------------------------------------------------------------------------------

def load_base(checkpoint: str):
    """The checkpoint's VAE, UNet and text encoder, frozen, in fp32."""
    vae, unet, text = train.build_models()
    train.load_parts(checkpoint, {"first_stage_model.": vae, "model.diffusion_model.": unet,
                                  "cond_stage_model.transformer.": text.transformer})
    for module in (vae, unet, text):
        module.requires_grad_(False)
        module.eval()
    return vae, unet, text


def train_lora(unet, text, latents, latent_stds, scenes, steps: int, batch: int, lr: float, seed: int,
               generator: torch.Generator, params, save_every: int = 0, save_fn=None):
    """eps-prediction with the checkpoint's own recipe (SD1 schedule, offset noise, min-SNR(5) weights, 10% empty
    captions so the unconditional prediction stays trained); only `params` (the LoRA's) learn. -> captions seen."""
    tokens_of = train.CaptionTokens()
    caption_rng = random.Random(seed + 1)
    alphas_cumprod = train.sd1_alphas_cumprod()
    weights = train.loss_weights(alphas_cumprod, 0.0)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    seen = []
    start = time.time()
    running = None
    for step in range(steps):
        train.set_lr(optimizer, train.scheduled_lr(lr, step, steps))
        index = torch.randint(0, latents.shape[0], (batch,), generator=generator)
        captions = [shapes_data.caption_scene(caption_rng, scenes[int(i)]) if caption_rng.random() >= 0.1 else ""
                    for i in index]
        seen += captions
        context = text.transformer(input_ids=tokens_of(captions)).last_hidden_state
        x0 = train.SCALE_FACTOR * (latents[index] + latent_stds[index] * torch.randn(latents[index].shape, generator=generator))
        t = torch.randint(0, 1000, (batch,), generator=generator)
        noise = train.training_noise(x0.shape, generator)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        prediction = unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, context)
        loss = (weights[t] * ((prediction - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 25 == 0 or step == steps - 1:
            log(f"lora step {step}/{steps} loss {running:.4f} ({time.time() - start:.0f}s)")
        if save_every and save_fn and (step + 1) % save_every == 0 and step + 1 < steps:
            save_fn(step + 1, seen)
    return seen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="the demo checkpoint the LoRA is for")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=1200, help="training pictures, half of them with turquoise")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=8.0)
    parser.add_argument("--save-every", type=int, default=0, help="also write the LoRA so far every N steps (OUT.stepN)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.checkpoint):
        parser.error(f"--checkpoint: no file at {args.checkpoint}")

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    began = time.time()
    log(f"arguments: {json.dumps(vars(args))}")

    vae, unet, text = load_base(args.checkpoint)
    train.use_channels_last(vae)
    scenes, images = make_dataset(args.images, args.seed)
    latents, latent_stds = train.encode_all(vae, torch.from_numpy(images))
    log(f"dataset: {len(scenes)} pictures encoded ({time.time() - began:.0f}s)")

    loras = {**attach_loras(unet, UNET_TARGETS, "lora_unet_", args.rank, args.alpha),
             **attach_loras(text.transformer, TEXT_TARGETS, "lora_te_", args.rank, args.alpha)}
    params = [p for lora in loras.values() for p in (lora.down.weight, lora.up.weight)]
    for p in params:
        p.requires_grad_(True)
    log(f"{len(loras)} LoRA modules, {sum(p.numel() for p in params)} parameters")
    command = "venv/bin/python -m demo_model.train_lora " + " ".join(sys.argv[1:] if argv is None else argv)

    def metadata(steps, captions):
        return {
            "ss_network_module": "networks.lora", "ss_network_dim": args.rank, "ss_network_alpha": args.alpha,
            "ss_output_name": LORA_NAME, "ss_base_model_version": "sd_v1",
            "ss_sd_model_name": os.path.basename(args.checkpoint), "ss_resolution": "(64, 64)",
            "ss_num_train_images": args.images, "ss_steps": steps, "ss_max_train_steps": args.steps,
            "ss_batch_size_per_device": args.batch, "ss_learning_rate": args.lr, "ss_seed": args.seed,
            "ss_training_comment": f"teaches the demo checkpoint the colour word '{NEW_COLOUR}' (RGB {NEW_RGB})",
            "ss_tag_frequency": json.dumps(tag_frequency(captions)),
            "demo_model.command": command, "demo_model.minutes": round((time.time() - began) / 60, 1),
        }

    captions = train_lora(unet, text, latents, latent_stds, scenes, args.steps, args.batch, args.lr, args.seed,
                          generator, params, args.save_every,
                          lambda step, seen: save_lora(loras, f"{args.out}.step{step}", metadata(step, seen)))
    save_lora(loras, args.out, metadata(args.steps, captions))
    log(f"done in {(time.time() - began) / 60:.1f} min")


if __name__ == "__main__":
    main()
