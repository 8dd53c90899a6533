"""LoRA cost on an SD1.5-size model: applying, re-applying, removing a rank-32 LoRA, and sampling speed with and
without it.

    flock /tmp/sdwebui-bigmem.lock /work/main/venv/bin/python benchmarks/benchmark_networks.py [--rank 32] [--repeats 3]

The model has SD1.5's UNet and text encoder at full width with random weights (a tiny VAE: it plays no part); the
LoRA (kohya layout, fp16) touches every Linear and Conv2d of both, as a LoCon trained on all layers would.
One "it" is one UNet call on a batch of 2 (cond + uncond) 64x64 latents, what a 512x512 image costs per step.
Needs about 8 GB of RAM.
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("SD_WEBUI_DATA_DIR", tempfile.mkdtemp(prefix="sdwebui-bench-"))

import torch  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def unet_step_seconds(model, repeats):
    unet = model.model.diffusion_model
    x = torch.randn(2, 4, 64, 64)
    t = torch.tensor([500, 500])
    context = torch.randn(2, 77, 768)
    with torch.inference_mode():
        unet(x, t, context)  # warm-up
        times = [timed(lambda: unet(x, t, context)) for _ in range(repeats)]
    return min(times)


def text_encoder_seconds(model, repeats):
    with torch.inference_mode():
        model.cond_stage_model(["a photo of a cat"])
        return min(timed(lambda: model.cond_stage_model(["a photo of a cat"])) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from modules import devices, shared
    from modules.lora import networks
    from tests import checkpoint_factory, network_factory

    torch.set_grad_enabled(False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {devices.device}", flush=True)
    model = checkpoint_factory.build_random_model(unet=checkpoint_factory.SD15_UNET, clip=checkpoint_factory.SD15_CLIP)
    shared.sd_model = model
    lora_dir = tempfile.mkdtemp(prefix="sdwebui-bench-lora-")
    weights = network_factory.lora_weights(model, rank=args.rank, alpha=args.rank / 2, scale=0.02)
    path = network_factory.save_lora(os.path.join(lora_dir, "bench.safetensors"), model, weights)
    shared.cmd_opts.lora_dir = lora_dir
    networks.list_available_networks()
    print(f"LoRA: rank {args.rank}, {len(weights)} layers, {os.path.getsize(path) / 2**20:.0f} MiB (fp16)", flush=True)

    rows = []
    base_step = unet_step_seconds(model, args.repeats)
    base_te = text_encoder_seconds(model, args.repeats)
    rows.append(("UNet step, no network", f"{base_step:.2f} s", f"{1 / base_step:.3f} it/s"))
    rows.append(("text encoder, no network", f"{base_te * 1000:.0f} ms", ""))

    first = timed(lambda: networks.load_networks(["bench"], [1.0], [1.0], [None]))
    rows.append(("apply (read file, patch all layers)", f"{first:.2f} s", f"{len(model.network_patch_state.patched_layers)} layers"))
    same = timed(lambda: networks.load_networks(["bench"], [1.0], [1.0], [None]))
    rows.append(("apply again, same multipliers", f"{same * 1000:.1f} ms", "nothing re-patched"))
    te_only = timed(lambda: networks.load_networks(["bench"], [0.5], [1.0], [None]))
    rows.append(("change TE multiplier only", f"{te_only:.2f} s", "text encoder layers only"))
    changed = timed(lambda: networks.load_networks(["bench"], [0.5], [0.8], [None]))
    rows.append(("change UNet multiplier", f"{changed:.2f} s", "UNet layers only"))

    lora_step = unet_step_seconds(model, args.repeats)
    lora_te = text_encoder_seconds(model, args.repeats)
    rows.append(("UNet step, LoRA applied", f"{lora_step:.2f} s", f"{1 / lora_step:.3f} it/s ({(lora_step / base_step - 1) * 100:+.1f}%)"))
    rows.append(("text encoder, LoRA applied", f"{lora_te * 1000:.0f} ms", ""))
    backup_bytes = sum(layer.network_weights_backup.numel() * layer.network_weights_backup.element_size()
                       for layer in model.network_layer_mapping.values() if getattr(layer, "network_weights_backup", None) is not None)
    rows.append(("original-weight copies held", f"{backup_bytes / 2**20:.0f} MiB", ""))

    removed = timed(lambda: networks.load_networks([]))
    rows.append(("remove (restore originals)", f"{removed:.2f} s", f"{len(model.network_patch_state.patched_layers)} layers left"))

    width = max(len(r[0]) for r in rows)
    print()
    print(f"| {'measure'.ljust(width)} | time | note |")
    print(f"|{'-' * (width + 2)}|------|------|")
    for name, value, note in rows:
        print(f"| {name.ljust(width)} | {value} | {note} |")


if __name__ == "__main__":
    main()
