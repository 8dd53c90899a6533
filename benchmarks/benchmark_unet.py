"""UNet speed at SD1.5 size with random weights: our UNet, and diffusers' on the same weights when installed.

    venv/bin/python benchmarks/benchmark_unet.py                 # CPU: 32x32 latent, fp32
    venv/bin/python benchmarks/benchmark_unet.py --device cuda   # GPU: 64x64 latent (512x512 image), fp16

A step is one UNet call on a classifier-free-guidance batch of 2 (cond + uncond) for one image; seconds per image
is `--steps` such calls. Timings are the median of `--repeats` calls after `--warmup` untimed ones; the two
implementations' calls alternate so that background load affects both alike.
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SD15_UNET = dict(in_channels=4, out_channels=4, model_channels=320, channel_mult=(1, 2, 4, 4), num_res_blocks=2,
                 attention_resolutions=[4, 2, 1], transformer_depth=1, num_heads=8, context_dim=768)
DIFFUSERS_SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=768,
    block_out_channels=(320, 640, 1280, 1280), attention_head_dim=8, use_linear_projection=False,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
)


def build_ours(device, dtype, seed):
    from ldm.modules.diffusionmodules.openaimodel import UNetModel
    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNetModel(**SD15_UNET)
    return unet.to(dtype).eval().requires_grad_(False)


def build_diffusers(our_unet):
    """diffusers' UNet sharing our UNet's tensors (converted by diffusers' single-file conversion; no copy)."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
    sd = {"model.diffusion_model." + k: v for k, v in our_unet.state_dict().items()}
    converted = convert_ldm_unet_checkpoint(sd, DIFFUSERS_SD15_UNET)
    with torch.device("meta"):
        unet = UNet2DConditionModel(**DIFFUSERS_SD15_UNET)
    missing, unexpected = unet.load_state_dict(converted, strict=False, assign=True)
    if missing or unexpected:
        raise RuntimeError(f"diffusers weights did not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return unet.eval().requires_grad_(False)


def time_interleaved(fns, device, warmup, repeats):
    """Median seconds per call of each fn; calls alternate between the fns so background load hits them alike."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()
    for fn in fns:
        for _ in range(warmup):
            fn()
    sync()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            sync()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default=None, help="default: fp16 on CUDA, fp32 on CPU")
    parser.add_argument("--latent", type=int, default=None, help="latent side (image side / 8); default 64 on GPU, 32 on CPU")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps per image")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-diffusers", action="store_true", help="time only our UNet")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype or ("fp16" if on_gpu else "fp32")]
    latent = args.latent or (64 if on_gpu else 32)
    warmup = args.warmup if args.warmup is not None else (3 if on_gpu else 1)
    repeats = args.repeats if args.repeats is not None else (20 if on_gpu else 3)
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    g = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(2, 4, latent, latent, generator=g).to(device, dtype)
    t = torch.tensor([500, 500], device=device)
    context = torch.randn(2, 77, 768, generator=g).to(device, dtype)

    ours = build_ours(device, dtype, args.seed)
    labels, fns = ["ours (ldm UNetModel)"], [lambda: ours(x, t, context=context)]
    agreement = None
    with torch.inference_mode():
        if not args.no_diffusers:
            try:
                import diffusers  # noqa: F401
                theirs = build_diffusers(ours)
                a = ours(x, t, context=context).float()
                b = theirs(x, t, encoder_hidden_states=context).sample.float()
                agreement = float((a - b).norm() / b.norm())
                labels.append("diffusers UNet2DConditionModel")
                fns.append(lambda: theirs(x, t, encoder_hidden_states=context))
            except ImportError:
                print("diffusers is not installed: timing our UNet only")
        rows = list(zip(labels, time_interleaved(fns, device, warmup, repeats)))

    name = torch.cuda.get_device_name(device) if on_gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\nSD1.5 UNet, random weights, {name}, {str(dtype).replace('torch.', '')}, latent {latent}x{latent} "
          f"(image {latent * 8}x{latent * 8}), CFG batch 2, median of {repeats} calls after {warmup} warm-up\n")
    print(f"| implementation | steps/s | s/step | s/image ({args.steps} steps) |")
    print("|---|---:|---:|---:|")
    for label, step in rows:
        print(f"| {label} | {1 / step:.2f} | {step:.3f} | {step * args.steps:.2f} |")
    if len(rows) == 2:
        print(f"\nspeed ratio ours/diffusers: {rows[1][1] / rows[0][1]:.2f}x  (outputs agree to relative error {agreement:.1e})")


if __name__ == "__main__":
    main()
