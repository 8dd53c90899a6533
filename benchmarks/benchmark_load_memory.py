"""Peak memory (RSS) of loading a checkpoint on the CPU, against the file's size.

    flock /tmp/sdwebui-bigmem.lock venv/bin/python benchmarks/benchmark_load_memory.py   # random SD1.5 fp16 (2 GB, written once)
    venv/bin/python benchmarks/benchmark_load_memory.py --file models/Stable-diffusion/x.safetensors
    venv/bin/python benchmarks/benchmark_load_memory.py --file x.safetensors --json               # one JSON line

The load runs in a fresh child process (`--child`), after the engine's imports, so the figures are the process a
user has: "before" is its RSS with torch and transformers imported, "peak" the highest RSS while the checkpoint
loads (the kernel's high-water mark, reset just before loading). The CPU keeps fp32, so an fp16 file's model is
twice the file: the loader itself should add nothing beyond that.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2 ** 30


def _status_kib(field):
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(path, warmup_path=None):
    """Load `path` as the web UI does and print the memory figures as one JSON line. With `warmup_path`, that (small)
    checkpoint is loaded and unloaded first, so what loading allocates once (tokenizer, lazy imports) is not counted."""
    sys.path.insert(0, ROOT)
    from modules.cpu_threading import prefer_passive_omp_wait
    prefer_passive_omp_wait()
    from modules import sd_models, shared  # noqa: F401  (the engine's imports, as in the web UI)
    import ldm.models.diffusion.ddpm  # noqa: F401
    import transformers.models.clip.modeling_clip  # noqa: F401
    if warmup_path:
        sd_models.unload_model_weights(sd_models.load_model(sd_models.CheckpointInfo(warmup_path)))
    before = _status_kib("VmRSS") * 1024
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    start = time.perf_counter()
    model = sd_models.load_model(sd_models.CheckpointInfo(path))
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") * 1024
    dtype = str(next(model.model.diffusion_model.parameters()).dtype).replace("torch.", "")
    print(json.dumps(dict(file=os.path.getsize(path), before=before, peak=peak, seconds=seconds, model_dtype=dtype)))


def measure(path, warmup_path=None):
    """The child's figures for `path` (a dict); raises with the child's output when it fails."""
    env = dict(os.environ, SD_WEBUI_TEST_ARGV=os.environ.get("SD_WEBUI_TEST_ARGV", "--no-hashing"))
    env.setdefault("SD_WEBUI_DATA_DIR", tempfile.mkdtemp(prefix="sdwebui-bench-"))
    command = [sys.executable, os.path.abspath(__file__), "--child", path]
    if warmup_path:
        command += ["--warmup-file", warmup_path]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"loading {path} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", help="checkpoint to load (default: a random-weight SD1.5 fp16 file, made once in a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    parser.add_argument("--warmup-file", help="a small checkpoint loaded and unloaded before the measured load")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.warmup_file)
        return
    path = args.file
    if path is None:
        from random_checkpoints import random_checkpoint  # benchmarks/, beside this script
        path = random_checkpoint("sd15")
    r = measure(path, args.warmup_file)
    if args.json:
        print(json.dumps(r))
        return
    size = r["file"]
    print(f"\nLoading {os.path.basename(path)} on the CPU (model in {r['model_dtype']})\n")
    print("| file | RSS before load | peak RSS | peak / file | added by the load / file | load time |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {size / GIB:.2f} GiB | {r['before'] / GIB:.2f} GiB | {r['peak'] / GIB:.2f} GiB | {r['peak'] / size:.2f}x "
          f"| {(r['peak'] - r['before']) / size:.2f}x | {r['seconds']:.1f} s |")


if __name__ == "__main__":
    main()
