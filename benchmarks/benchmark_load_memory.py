"""Peak memory (RSS) of loading a checkpoint on the CPU, against the file's size.

    flock /tmp/sdwebui-bigmem.lock venv/bin/python benchmarks/benchmark_load_memory.py   # random SD1.5 fp16 (2 GB, written once)
    venv/bin/python benchmarks/benchmark_load_memory.py --file models/Stable-diffusion/x.safetensors
    venv/bin/python benchmarks/benchmark_load_memory.py --file x.safetensors --json               # one JSON line
    # random SDXL base (6.9 GB fp16) and refiner files in the temp folder, deleted afterwards; the refiner swap
    # base -> refiner -> base as the Refiner does it when both do not stay loaded (sd_checkpoints_limit 1)
    flock /tmp/sdwebui-bigmem.lock venv/bin/python benchmarks/benchmark_load_memory.py --model sdxl --refiner sdxl_refiner --delete

The load runs in a fresh child process (`--child`), after the engine's imports, so the figures are the process a
user has: "before" is its RSS with the engine (torch included) imported, "peak" the highest RSS while the checkpoint
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


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")  # reset the peak RSS (VmHWM) to the current RSS


def _timed_switch(sd_models, path):
    """Seconds and peak RSS of switching the loaded model to `path` as the Refiner does (modules.sd_samplers_common)."""
    _reset_peak()
    start = time.perf_counter()
    sd_models.reload_model_weights(info=sd_models.CheckpointInfo(path))
    return time.perf_counter() - start, _status_kib("VmHWM") * 1024


def child(path, warmup_path=None, refiner_path=None):
    """Load `path` as the web UI does and print the memory figures as one JSON line. With `warmup_path`, that (small)
    checkpoint is loaded and unloaded first, so what loading allocates once (tokenizer, lazy imports) is not counted.
    With `refiner_path`, the loaded model is then switched to that file and back, one model loaded at a time."""
    sys.path.insert(0, ROOT)
    from modules.cpu_threading import prefer_passive_omp_wait
    prefer_passive_omp_wait()
    from modules import sd_models, shared  # noqa: F401  (the engine's imports, as in the web UI)
    import ldm.models.diffusion.ddpm  # noqa: F401
    if warmup_path:
        sd_models.unload_model_weights(sd_models.load_model(sd_models.CheckpointInfo(warmup_path)))
    before = _status_kib("VmRSS") * 1024
    _reset_peak()
    start = time.perf_counter()
    model = sd_models.load_model(sd_models.CheckpointInfo(path))
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") * 1024
    dtype = str(next(model.model.diffusion_model.parameters()).dtype).replace("torch.", "")
    figures = dict(file=os.path.getsize(path), before=before, peak=peak, seconds=seconds, model_dtype=dtype)
    if refiner_path:
        del model
        shared.opts.data["sd_checkpoints_limit"] = 1  # the previous model is unloaded before the next one is built
        figures["to_refiner"] = _timed_switch(sd_models, refiner_path)
        figures["back_to_base"] = _timed_switch(sd_models, path)
        figures["refiner_file"] = os.path.getsize(refiner_path)
    print(json.dumps(figures))


def measure(path, warmup_path=None, refiner_path=None):
    """The child's figures for `path` (a dict); raises with the child's output when it fails."""
    env = dict(os.environ, SD_WEBUI_TEST_ARGV=os.environ.get("SD_WEBUI_TEST_ARGV", "--no-hashing"))
    env.setdefault("SD_WEBUI_DATA_DIR", tempfile.mkdtemp(prefix="sdwebui-bench-"))
    command = [sys.executable, os.path.abspath(__file__), "--child", path]
    if warmup_path:
        command += ["--warmup-file", warmup_path]
    if refiner_path:
        command += ["--refiner-file", refiner_path]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"loading {path} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", help="checkpoint to load (default: a random-weight file of --model, made once in a temp dir)")
    parser.add_argument("--model", default="sd15", help="random-weight checkpoint to load: sd15 (default), sd2, sdxl, sdxl_refiner")
    parser.add_argument("--refiner", help="then switch to this random-weight model (e.g. sdxl_refiner) and back, one loaded at a time")
    parser.add_argument("--delete", action="store_true", help="delete the random-weight files afterwards")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    parser.add_argument("--warmup-file", help="a small checkpoint loaded and unloaded before the measured load")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--refiner-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.warmup_file, args.refiner_file)
        return
    from random_checkpoints import random_checkpoint  # benchmarks/, beside this script
    path = args.file or random_checkpoint(args.model)
    refiner_path = random_checkpoint(args.refiner) if args.refiner else None
    try:
        r = measure(path, args.warmup_file, refiner_path)
    finally:
        if args.delete:
            for written in {path, refiner_path} - {args.file, None}:
                os.remove(written)
    if args.json:
        print(json.dumps(r))
        return
    size = r["file"]
    print(f"\nLoading {os.path.basename(path)} on the CPU (model in {r['model_dtype']})\n")
    print("| file | RSS before load | peak RSS | peak / file | added by the load / file | load time |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {size / GIB:.2f} GiB | {r['before'] / GIB:.2f} GiB | {r['peak'] / GIB:.2f} GiB | {r['peak'] / size:.2f}x "
          f"| {(r['peak'] - r['before']) / size:.2f}x | {r['seconds']:.1f} s |")
    if refiner_path:
        print(f"\nRefiner swap, one model loaded at a time (refiner file {r['refiner_file'] / GIB:.2f} GiB)\n")
        print("| switch | time | peak RSS |")
        print("|---|---:|---:|")
        for label, key in (("base -> refiner", "to_refiner"), ("refiner -> base", "back_to_base")):
            seconds, peak = r[key]
            print(f"| {label} | {seconds:.1f} s | {peak / GIB:.2f} GiB |")
        total = r["to_refiner"][0] + r["back_to_base"][0]
        print(f"| both (what a refined job adds) | {total:.1f} s | |")


if __name__ == "__main__":
    main()
