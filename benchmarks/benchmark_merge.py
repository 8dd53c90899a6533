"""Benchmark: streamed checkpoint merge vs. a naive load-everything merge, on SD1.5-size random checkpoints.

    venv/bin/python benchmarks/benchmark_merge.py [--dir DIR] [--dtype fp16|fp32] [--keep]

Generates three random checkpoints with SD1.5's key layout and sizes (UNet ~860M, VAE ~84M, CLIP ~123M
parameters), each written tensor by tensor so generating needs no more memory than one tensor, then runs every
variant in its own subprocess and prints its wall time and peak resident memory (ru_maxrss). "read inputs +
write output" is the floor: the same bytes read and written with no arithmetic. Runs are on a warm page cache
(the floor runs first); every output is fsync'ed, as the merger does.
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


# ------------------------------------------------------------------------------------- SD1.5-shaped layouts

def _resblock(p, cin, cout, emb=1280):
    s = {f"{p}.in_layers.0.weight": (cin,), f"{p}.in_layers.0.bias": (cin,),
         f"{p}.in_layers.2.weight": (cout, cin, 3, 3), f"{p}.in_layers.2.bias": (cout,),
         f"{p}.emb_layers.1.weight": (cout, emb), f"{p}.emb_layers.1.bias": (cout,),
         f"{p}.out_layers.0.weight": (cout,), f"{p}.out_layers.0.bias": (cout,),
         f"{p}.out_layers.3.weight": (cout, cout, 3, 3), f"{p}.out_layers.3.bias": (cout,)}
    if cin != cout:
        s[f"{p}.skip_connection.weight"] = (cout, cin, 1, 1)
        s[f"{p}.skip_connection.bias"] = (cout,)
    return s


def _transformer(p, c, ctx=768):
    t = f"{p}.transformer_blocks.0"
    s = {f"{p}.norm.weight": (c,), f"{p}.norm.bias": (c,), f"{p}.proj_in.weight": (c, c, 1, 1), f"{p}.proj_in.bias": (c,),
         f"{p}.proj_out.weight": (c, c, 1, 1), f"{p}.proj_out.bias": (c,),
         f"{t}.ff.net.0.proj.weight": (8 * c, c), f"{t}.ff.net.0.proj.bias": (8 * c,),
         f"{t}.ff.net.2.weight": (c, 4 * c), f"{t}.ff.net.2.bias": (c,)}
    for attn, kv in (("attn1", c), ("attn2", ctx)):
        s.update({f"{t}.{attn}.to_q.weight": (c, c), f"{t}.{attn}.to_k.weight": (c, kv), f"{t}.{attn}.to_v.weight": (c, kv),
                  f"{t}.{attn}.to_out.0.weight": (c, c), f"{t}.{attn}.to_out.0.bias": (c,)})
    for n in (1, 2, 3):
        s[f"{t}.norm{n}.weight"] = (c,)
        s[f"{t}.norm{n}.bias"] = (c,)
    return s


def unet_shapes(prefix="model.diffusion_model"):
    s = {f"{prefix}.time_embed.0.weight": (1280, 320), f"{prefix}.time_embed.0.bias": (1280,),
         f"{prefix}.time_embed.2.weight": (1280, 1280), f"{prefix}.time_embed.2.bias": (1280,),
         f"{prefix}.input_blocks.0.0.weight": (320, 4, 3, 3), f"{prefix}.input_blocks.0.0.bias": (320,)}
    mults, ch, n, skips = (1, 2, 4, 4), 320, 1, [320]
    for level, mult in enumerate(mults):
        for _ in range(2):
            s.update(_resblock(f"{prefix}.input_blocks.{n}.0", ch, 320 * mult))
            ch = 320 * mult
            if level < 3:
                s.update(_transformer(f"{prefix}.input_blocks.{n}.1", ch))
            skips.append(ch)
            n += 1
        if level < 3:
            s[f"{prefix}.input_blocks.{n}.0.op.weight"] = (ch, ch, 3, 3)
            s[f"{prefix}.input_blocks.{n}.0.op.bias"] = (ch,)
            skips.append(ch)
            n += 1
    s.update(_resblock(f"{prefix}.middle_block.0", ch, ch))
    s.update(_transformer(f"{prefix}.middle_block.1", ch))
    s.update(_resblock(f"{prefix}.middle_block.2", ch, ch))
    n = 0
    for level, mult in reversed(list(enumerate(mults))):
        for i in range(3):
            s.update(_resblock(f"{prefix}.output_blocks.{n}.0", ch + skips.pop(), 320 * mult))
            ch = 320 * mult
            if level < 3:
                s.update(_transformer(f"{prefix}.output_blocks.{n}.1", ch))
            if level > 0 and i == 2:
                up = 2 if level < 3 else 1
                s[f"{prefix}.output_blocks.{n}.{up}.conv.weight"] = (ch, ch, 3, 3)
                s[f"{prefix}.output_blocks.{n}.{up}.conv.bias"] = (ch,)
            n += 1
    s.update({f"{prefix}.out.0.weight": (320,), f"{prefix}.out.0.bias": (320,),
              f"{prefix}.out.2.weight": (4, 320, 3, 3), f"{prefix}.out.2.bias": (4,)})
    return s


def _vae_resnet(p, cin, cout):
    s = {f"{p}.norm1.weight": (cin,), f"{p}.norm1.bias": (cin,), f"{p}.conv1.weight": (cout, cin, 3, 3), f"{p}.conv1.bias": (cout,),
         f"{p}.norm2.weight": (cout,), f"{p}.norm2.bias": (cout,), f"{p}.conv2.weight": (cout, cout, 3, 3), f"{p}.conv2.bias": (cout,)}
    if cin != cout:
        s[f"{p}.nin_shortcut.weight"] = (cout, cin, 1, 1)
        s[f"{p}.nin_shortcut.bias"] = (cout,)
    return s


def _vae_mid(p, c=512):
    s = {**_vae_resnet(f"{p}.block_1", c, c), **_vae_resnet(f"{p}.block_2", c, c),
         f"{p}.attn_1.norm.weight": (c,), f"{p}.attn_1.norm.bias": (c,)}
    for name in ("q", "k", "v", "proj_out"):
        s[f"{p}.attn_1.{name}.weight"] = (c, c, 1, 1)
        s[f"{p}.attn_1.{name}.bias"] = (c,)
    return s


def vae_shapes(prefix="first_stage_model"):
    e, d = f"{prefix}.encoder", f"{prefix}.decoder"
    s = {f"{e}.conv_in.weight": (128, 3, 3, 3), f"{e}.conv_in.bias": (128,)}
    ch = 128
    for level, cout in enumerate((128, 256, 512, 512)):
        for i in range(2):
            s.update(_vae_resnet(f"{e}.down.{level}.block.{i}", ch, cout))
            ch = cout
        if level < 3:
            s[f"{e}.down.{level}.downsample.conv.weight"] = (ch, ch, 3, 3)
            s[f"{e}.down.{level}.downsample.conv.bias"] = (ch,)
    s.update(_vae_mid(f"{e}.mid"))
    s.update({f"{e}.norm_out.weight": (512,), f"{e}.norm_out.bias": (512,), f"{e}.conv_out.weight": (8, 512, 3, 3), f"{e}.conv_out.bias": (8,),
              f"{prefix}.quant_conv.weight": (8, 8, 1, 1), f"{prefix}.quant_conv.bias": (8,),
              f"{prefix}.post_quant_conv.weight": (4, 4, 1, 1), f"{prefix}.post_quant_conv.bias": (4,),
              f"{d}.conv_in.weight": (512, 4, 3, 3), f"{d}.conv_in.bias": (512,)})
    s.update(_vae_mid(f"{d}.mid"))
    ch = 512
    for level, cout in reversed(list(enumerate((128, 256, 512, 512)))):
        for i in range(3):
            s.update(_vae_resnet(f"{d}.up.{level}.block.{i}", ch, cout))
            ch = cout
        if level > 0:
            s[f"{d}.up.{level}.upsample.conv.weight"] = (ch, ch, 3, 3)
            s[f"{d}.up.{level}.upsample.conv.bias"] = (ch,)
    s.update({f"{d}.norm_out.weight": (128,), f"{d}.norm_out.bias": (128,), f"{d}.conv_out.weight": (3, 128, 3, 3), f"{d}.conv_out.bias": (3,)})
    return s


def clip_shapes(prefix="cond_stage_model.transformer.text_model"):
    s = {f"{prefix}.embeddings.token_embedding.weight": (49408, 768), f"{prefix}.embeddings.position_embedding.weight": (77, 768),
         f"{prefix}.final_layer_norm.weight": (768,), f"{prefix}.final_layer_norm.bias": (768,)}
    for i in range(12):
        p = f"{prefix}.encoder.layers.{i}"
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            s[f"{p}.self_attn.{name}.weight"] = (768, 768)
            s[f"{p}.self_attn.{name}.bias"] = (768,)
        s.update({f"{p}.mlp.fc1.weight": (3072, 768), f"{p}.mlp.fc1.bias": (3072,), f"{p}.mlp.fc2.weight": (768, 3072), f"{p}.mlp.fc2.bias": (768,)})
        for n in (1, 2):
            s[f"{p}.layer_norm{n}.weight"] = (768,)
            s[f"{p}.layer_norm{n}.bias"] = (768,)
    return s


def sd15_layout(dtype):
    import torch
    plan = {k: (dtype, v) for k, v in {**unet_shapes(), **vae_shapes(), **clip_shapes()}.items()}
    plan["cond_stage_model.transformer.text_model.embeddings.position_ids"] = (torch.int64, (1, 77))
    plan["alphas_cumprod"] = (torch.float32, (1000,))
    return plan


def generate_checkpoint(path, dtype, seed):
    """A random SD1.5-size checkpoint, written one tensor at a time (memory: one tensor)."""
    import torch
    from modules import safetensors_stream
    plan = sd15_layout(dtype)
    g = torch.Generator().manual_seed(seed)
    with open(path, "wb") as f:
        writer = safetensors_stream.SafetensorsWriter(f, plan)
        for key in writer.order:
            dt, shape = plan[key]
            t = torch.arange(77).reshape(shape) if dt == torch.int64 else (torch.randn(shape, generator=g) * 0.05).to(dt)
            writer.write(key, t)
        writer.finish()
    return sum(math.prod(shape) for _, shape in plan.values())


# --------------------------------------------------------------------------------------------- the variants

def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def variant_io_floor(a, b, c, out, method):
    """Read every input byte and write an output-sized file: what any merge must at least cost."""
    size = os.path.getsize(a)
    buf = bytearray(16 << 20)
    for path in (a, b) + ((c,) if method == "add_difference" else ()):
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass
    with open(out, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(buf))
            f.write(memoryview(buf)[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())


def variant_streamed(a, b, c, out, method):
    from modules import merge
    merge.merge_checkpoints(a, b, c if method == "add_difference" else None, method=method, multiplier=0.3,
                            output_path=out, add_merge_recipe=False)


def variant_naive(a, b, c, out, method):
    """A1111's approach: load whole state dicts, merge in memory, save (then fsync, as the streamed merger does)."""
    import torch
    from safetensors.torch import load_file, save_file
    theta_1 = load_file(b)
    if method == "add_difference":
        theta_2 = load_file(c)
        for key in theta_1:
            if "model" in key and key in theta_2:
                theta_1[key] = theta_1[key] - theta_2[key]
        del theta_2
    theta_0 = load_file(a)
    m = 0.3
    for key in theta_0:
        if "model" in key and key in theta_1 and theta_0[key].is_floating_point():
            if method == "add_difference":
                theta_0[key] = theta_0[key] + theta_1[key] * m
            elif method == "sigmoid":
                w = m * m * (3 - 2 * m)
                theta_0[key] = theta_0[key] * (1 - w) + theta_1[key] * w
            else:
                theta_0[key] = theta_0[key] * (1 - m) + theta_1[key] * m
    del theta_1
    save_file(theta_0, out, metadata={"format": "pt"})
    _fsync(out)
    del torch


VARIANTS = {"read inputs + write output (no math)": variant_io_floor, "streamed (ours)": variant_streamed, "naive (load everything)": variant_naive}


def child(args):
    """Run one variant in this fresh process; print seconds and peak RSS as JSON."""
    import torch  # noqa: F401 - imported before timing, as in the web UI where torch is already loaded
    from modules import merge  # noqa: F401
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    VARIANTS[args.variant](args.a, args.b, args.c, args.out, args.method)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss": peak, "baseline_rss": baseline}))


def _gb(n):
    return f"{n / 1024 ** 3:6.2f} GB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="folder for the generated checkpoints (default: a temp dir)")
    parser.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    parser.add_argument("--methods", default="weighted_sum,sigmoid,add_difference")
    parser.add_argument("--keep", action="store_true", help="keep the generated checkpoints")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    for name in ("a", "b", "c"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    import torch
    folder = args.dir or tempfile.mkdtemp(prefix="merge-bench-")
    os.makedirs(folder, exist_ok=True)
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    methods = args.methods.split(",")
    paths = {}
    for i, name in enumerate("abc"):
        if name == "c" and "add_difference" not in methods:
            continue
        path = paths[name] = os.path.join(folder, f"sd15-random-{args.dtype}-{name}.safetensors")
        if not os.path.exists(path):
            t = time.perf_counter()
            n = generate_checkpoint(path, dtype, seed=i)
            print(f"generated {path}: {n / 1e6:.0f}M parameters, {_gb(os.path.getsize(path))}, {time.perf_counter() - t:.1f} s", file=sys.stderr)
    size = os.path.getsize(paths["a"])

    rows = []
    out = os.path.join(folder, "merged.safetensors")
    for method in methods:
        for variant in VARIANTS:
            if os.path.exists(out):
                os.remove(out)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--variant", variant, "--method", method, "--out", out,
                   "--a", paths["a"], "--b", paths["b"], "--c", paths.get("c", paths["b"])]
            env = dict(os.environ, SD_WEBUI_TEST_ARGV="", SD_WEBUI_DATA_DIR=folder)
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
            if proc.returncode != 0:
                rows.append((method, variant, None, None, None))
                print(f"{method} / {variant} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((method, variant, r["seconds"], r["peak_rss"], r["baseline_rss"]))
            print(f"{method:15s} {variant:36s} {r['seconds']:7.1f} s  peak RSS {_gb(r['peak_rss'])}", file=sys.stderr)
    if os.path.exists(out):
        os.remove(out)

    print(f"\nTwo SD1.5-size random checkpoints, {args.dtype}, {_gb(size).strip()} each; M = 0.3; warm page cache.")
    print("| method | variant | seconds | peak RSS | RSS after imports |")
    print("|---|---|---:|---:|---:|")
    for method, variant, seconds, peak, base in rows:
        if seconds is None:
            print(f"| {method} | {variant} | failed | | |")
        else:
            print(f"| {method} | {variant} | {seconds:.1f} | {_gb(peak).strip()} | {_gb(base).strip()} |")
    if not args.keep and not args.dir:
        for p in paths.values():
            os.remove(p)
        os.rmdir(folder)


if __name__ == "__main__":
    main()
