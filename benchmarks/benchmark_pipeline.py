"""Full txt2img, ours against diffusers', on the same weights, scheduler family, sizes and steps, in one process.

    venv/bin/python benchmarks/benchmark_pipeline.py                              # CUDA if present, else the CPU
    venv/bin/python benchmarks/benchmark_pipeline.py --device cuda --compile --memory-modes sdxl
    flock /tmp/sdwebui-bigmem.lock venv/bin/python benchmarks/benchmark_pipeline.py --device cpu --models demo,sd15

Models: `demo` (the shipped demo checkpoint), `sd15` (SD1.5 widths, random weights), `sdxl` (SDXL base widths,
random weights) and any SD1/SDXL file given with `--file`. Random checkpoints are written once (fp16) to the temp
folder and loaded the way the web UI loads any file; diffusers gets the same tensors through its own single-file
conversion (its VAE decodes in the dtype it is given, as ours does: no fp32 upcast for SDXL).

"CPU s/image" is the process's CPU time per call (all its threads): on a CPU shared with other programs it shows the
work done when the wall time mostly shows the waiting.

Ours is `processing.process_images` (prompt parsing, text encoder, k-diffusion Euler, CFG, VAE decode, PIL image);
diffusers' is StableDiffusionPipeline / StableDiffusionXLPipeline with EulerDiscreteScheduler, both at CFG 7 with a
negative prompt, calls alternating so that background load hits both alike. Per implementation: the first call's time
(before any warm-up: "first image"), the median seconds per image of `--repeats` calls after `--warmup`, iterations
per second over the sampling loop (first to last step), and peak memory: on CUDA the weights on the GPU plus the
largest extra allocation during a call; on the CPU the largest RSS growth during a call (activations only; both
models' weights are resident all along).
"""
import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("SD_WEBUI_DATA_DIR", tempfile.mkdtemp(prefix="sdwebui-bench-"))
os.environ.setdefault("SD_WEBUI_TEST_ARGV", "--no-hashing --disable-console-progressbars --no-prompt-history")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modules.cpu_threading import prefer_passive_omp_wait  # noqa: E402

prefer_passive_omp_wait()

import torch  # noqa: E402

from random_checkpoints import random_checkpoint  # noqa: E402  (benchmarks/, beside this script)

GIB = 2 ** 30
PROMPT = "a large red circle in the centre on a white background"
NEGATIVE = "blue"
DEMO_FILE = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")
# image side per model: on a GPU the model's native size; on the CPU small enough to finish in minutes
SIDES = {"demo": (64, 64), "sd15": (512, 256), "sdxl": (1024, 512)}
CPU_STEPS = {"demo": 20, "sd15": 4, "sdxl": 2}


# ---- the models ---------------------------------------------------------------------------------------------------

def load_ours(path):
    from modules import sd_models, sd_samplers  # noqa: F401  (the web UI imports the samplers as it starts)
    sd_models.unload_model_weights()
    return sd_models.load_model(sd_models.CheckpointInfo(path))


def _diffusers_components(path, device, dtype):
    """(config, {name: module}) as diffusers builds them from an original-layout file: the UNet, the VAE and the text
    encoder(s), through diffusers' own single-file converters (tests/family_reference.py, shared with the parity
    tests)."""
    from modules import model_detection, sd_models
    from tests import family_reference as reference
    sd = sd_models.read_state_dict(path)
    config = model_detection.detect_config(sd, path)
    vae = reference.diffusers_vae(config, sd)
    # the latent scale of the family; and the VAE decodes in the dtype it is given, as ours does without --no-half-vae
    vae.register_to_config(scaling_factor=config.scale_factor, force_upcast=False)
    modules_ = dict(unet=reference.diffusers_unet(config, sd), vae=vae)
    for name, te in zip(("text_encoder", "text_encoder_2"), config.text_encoders):
        modules_[name] = reference.transformers_text_model(te, sd)
    del sd
    return config, {name: m.to(device, dtype).eval().requires_grad_(False) for name, m in modules_.items()}


def load_diffusers(path, device, dtype):
    """diffusers' StableDiffusionPipeline (SD1) or StableDiffusionXLPipeline (SDXL) with Euler, on the file's tensors."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
    from modules.clip_tokenizer import load_clip_tokenizer
    config, modules_ = _diffusers_components(path, device, dtype)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading")
    if config.family.is_sdxl:
        pipe = StableDiffusionXLPipeline(tokenizer=load_clip_tokenizer(), tokenizer_2=load_clip_tokenizer(),
                                         scheduler=scheduler, add_watermarker=False, **modules_)
    elif config.family.name == "sd1":
        pipe = StableDiffusionPipeline(tokenizer=load_clip_tokenizer(), scheduler=scheduler, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False, **modules_)
    else:
        raise NotImplementedError(f"no diffusers pipeline in this benchmark for {config.family.label}")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def weights_bytes(modules_):
    return sum(t.numel() * t.element_size() for m in modules_ for t in list(m.parameters()) + list(m.buffers()))


# ---- one timed call -----------------------------------------------------------------------------------------------

class StepClock:
    """Times the sampling loop from its first to its last step (synchronising the GPU at each)."""

    def __init__(self, device):
        self.device, self.times = device, []

    def tick(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.times.append(time.perf_counter())

    def its(self):
        return (len(self.times) - 1) / (self.times[-1] - self.times[0]) if len(self.times) > 1 else float("nan")


class MemoryWatch:
    def __init__(self, device):
        self.device = device

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
        else:
            self.before = _rss()
            with open("/proc/self/clear_refs", "w") as file:
                file.write("5")
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = _peak_rss()
        self.extra = self.peak - self.before


def _status_bytes(field):
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _rss():
    return _status_bytes("VmRSS")


def _peak_rss():
    return _status_bytes("VmHWM")


_ours_clock = []  # the StepClock of the call in progress (the step callback is registered once)


def _tick_ours(params):
    _ours_clock[-1].tick()


def run_ours(model, side, steps, seed, clock):
    from modules import processing, script_callbacks
    if not _ours_clock:
        script_callbacks.on_cfg_after_cfg(_tick_ours, name="benchmark step clock")
    _ours_clock.append(clock)
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=model, prompt=PROMPT, negative_prompt=NEGATIVE, steps=steps, cfg_scale=7, width=side, height=side,
        seed=seed, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    return processing.process_images(p).images[0]


def run_diffusers(pipe, side, steps, seed, clock):
    def on_step_end(pipeline, step, timestep, kwargs):
        clock.tick()
        return kwargs
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(PROMPT, negative_prompt=NEGATIVE, height=side, width=side, num_inference_steps=steps,
                guidance_scale=7.0, generator=generator, callback_on_step_end=on_step_end).images[0]


def timed(fn, device):
    """(wall seconds, it/s, memory watch, CPU seconds of this process) of one call."""
    clock = StepClock(device)
    with MemoryWatch(device) as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        fn(clock)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return seconds, clock.its(), memory, cpu_seconds


def _peak(memory, weights, device):
    """On the CPU: the RSS growth in a call. On CUDA: the weights on the GPU plus the call's extra allocation when
    several models share the GPU (`weights` given); the GPU's whole peak when the model is alone there (None)."""
    if device.type != "cuda":
        return memory.extra
    return memory.peak if weights is None else weights + memory.extra


def compare(impls, device, warmup, repeats):
    """impls: {label: (fn(clock), weights bytes or None)} -> {label: figures}; calls alternate between the
    implementations."""
    results = {label: dict(calls=[], its=[], cpu=[], peak=0) for label in impls}
    for label, (fn, weights) in impls.items():
        seconds, _, memory, _ = timed(fn, device)
        results[label]["first"] = seconds
        results[label]["peak"] = max(results[label]["peak"], _peak(memory, weights, device))
        for _ in range(warmup - 1):
            timed(fn, device)
    for _ in range(repeats):
        for label, (fn, weights) in impls.items():
            seconds, its, memory, cpu_seconds = timed(fn, device)
            r = results[label]
            r["calls"].append(seconds)
            r["its"].append(its)
            r["cpu"].append(cpu_seconds)
            r["peak"] = max(r["peak"], _peak(memory, weights, device))
    return {label: dict(first=r["first"], s_per_image=statistics.median(r["calls"]), its=statistics.median(r["its"]),
                        cpu_s_per_image=statistics.median(r["cpu"]), peak=r["peak"])
            for label, r in results.items()}


# ---- one model ----------------------------------------------------------------------------------------------------

def set_memory_flags(medvram=False, medvram_sdxl=False, lowvram=False, compile_=False):
    from modules import shared
    shared.cmd_opts.medvram, shared.cmd_opts.medvram_sdxl = medvram, medvram_sdxl
    shared.cmd_opts.lowvram, shared.cmd_opts.compile = lowvram, compile_


def bench_model(name, path, device, steps, warmup, repeats, side=None, memory_modes=False, save=lambda result: None):
    """Ours and diffusers' on the checkpoint at `path` (`side`: the image's; default: by the model's family), then
    ours in the memory modes (CUDA only). `save(result)` after each part, so a run cut short keeps what it measured."""
    from modules import devices
    set_memory_flags()
    ours = load_ours(path)
    if side is None:
        side = SIDES[name if name in SIDES else ("sdxl" if ours.is_sdxl else "sd15")][0 if device.type == "cuda" else 1]
    pipe = load_diffusers(path, device, devices.dtype_unet)
    ours_weights = weights_bytes([ours])
    theirs_weights = weights_bytes([m for m in pipe.components.values() if isinstance(m, torch.nn.Module)])
    seeds = iter(range(1000, 100000))
    impls = {
        "ours": (lambda clock: run_ours(ours, side, steps, next(seeds), clock), ours_weights),
        "diffusers": (lambda clock: run_diffusers(pipe, side, steps, next(seeds), clock), theirs_weights),
    }
    dtype = str(devices.dtype_unet).replace("torch.", "")
    result = dict(model=name, side=side, steps=steps, dtype=dtype, rows=compare(impls, device, warmup, repeats))
    save(result)
    del pipe, impls
    modes = []
    if memory_modes and device.type == "cuda":
        # --medvram-sdxl is --medvram for SDXL models only: the flag an SDXL user on a small card sets
        medvram = ("ours --medvram-sdxl", dict(medvram_sdxl=True)) if ours.is_sdxl else ("ours --medvram", dict(medvram=True))
        modes += [medvram, ("ours --lowvram", dict(lowvram=True))]
    del ours
    for label, flags in modes:
        bench_ours_with(result, label, flags, path, device, warmup, repeats)
        save(result)
    return result


def bench_ours_with(result, label, flags, path, device, warmup, repeats):
    """Adds the row `label`: ours alone on the device with these memory or compile flags (its peak is the GPU's)."""
    set_memory_flags(**flags)
    model = load_ours(path)
    seeds = iter(range(1000, 100000))

    def fn(clock):
        return run_ours(model, result["side"], result["steps"], next(seeds), clock)
    result["rows"].update(compare({label: (fn, None)}, device, warmup + (1 if flags.get("compile_") else 0), repeats))
    del model, fn
    set_memory_flags()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def print_table(device, results):
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:  # on a shared machine the load decides the CPU figures: say what it was
        name = f"CPU ({torch.get_num_threads()} threads, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})"
    memory = "peak VRAM (weights + activations)" if device.type == "cuda" else "peak RSS growth in a call"
    print(f"\ntxt2img, Euler, CFG 7, batch 1, {name}\n")
    print(f"| model | size | steps | dtype | implementation | first image s | s/image | CPU s/image | it/s | {memory} | ours vs diffusers |")
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for result in results:
        if "error" in result:
            print(f"| {result['model']} | | | | {result['error']} | | | | | | |")
            continue
        rows = result["rows"]
        base = rows.get("diffusers")
        for label, r in rows.items():
            ratio = f"{r['its'] / base['its']:.2f}x it/s, {base['s_per_image'] / r['s_per_image']:.2f}x s/image" if base and label != "diffusers" else ""
            print(f"| {result['model']} | {result['side']}x{result['side']} | {result['steps']} | {result['dtype']} | {label} "
                  f"| {r['first']:.2f} | {r['s_per_image']:.3f} | {r['cpu_s_per_image']:.2f} | {r['its']:.2f} "
                  f"| {r['peak'] / GIB:.2f} GiB | {ratio} |")


def wanted(models_option, name):
    return models_option == "all" or name in models_option.split(",")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default=None,
                        help="comma-separated: demo,sd15,sdxl (default: all on CUDA, demo,sd15 on the CPU; none with --file)")
    parser.add_argument("--file", action="append", default=[], metavar="PATH",
                        help="also benchmark this checkpoint (SD1 or SDXL; repeatable): your own weights")
    parser.add_argument("--side", type=int, default=None, help="image side for every model (default: per model and device)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: 20 on CUDA; fewer on the CPU for the big models)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--compile", nargs="?", const="all", default="", metavar="MODELS",
                        help="also time ours with --compile (for all models, or the comma-separated ones named)")
    parser.add_argument("--memory-modes", nargs="?", const="all", default="", metavar="MODELS",
                        help="also time ours with --medvram and --lowvram, CUDA only (all models, or those named)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    from modules import devices, shared
    if shared.device.type != device.type:
        shared.cmd_opts.use_cpu = [] if on_gpu else ["all"]
        devices.configure(shared.cmd_opts)
        shared.device = devices.device
    names = args.models if args.models is not None else ("" if args.file else "demo,sd15,sdxl" if on_gpu else "demo,sd15")
    models = [(name, DEMO_FILE if name == "demo" else None) for name in names.split(",") if name]
    models += [(os.path.splitext(os.path.basename(path))[0], path) for path in args.file]
    warmup = args.warmup if args.warmup is not None else (2 if on_gpu else 1)
    repeats = args.repeats if args.repeats is not None else (5 if on_gpu else 2)
    # every model's comparison (and memory modes) first, compiles last: compiling takes minutes, so a run cut short
    # (benchmarks/gpu_check.sh's time budget) loses the compiled rows, not a model
    pending = [name for name, _ in models] + [f"{name} --compile" for name, _ in models if wanted(args.compile, name)]
    results = []

    def save(result=None):
        if args.json:  # after each part, so a run cut short keeps what it measured
            done = results + ([result] if result is not None and result not in results else [])
            with open(args.json, "w") as file:
                json.dump(dict(device=str(device), results=done, pending=pending), file, indent=1)

    save()  # the plan: a run stopped before its first figure still names what it did not measure
    try:
        compiled = []
        for name, path in models:
            steps = args.steps or (20 if on_gpu else CPU_STEPS.get(name, 4))
            path = path or random_checkpoint(name)
            try:
                result = bench_model(name, path, device, steps, warmup, repeats, args.side,
                                     wanted(args.memory_modes, name), save)
                if wanted(args.compile, name):
                    compiled.append((result, path))
            except NotImplementedError as e:
                result = dict(model=name, error=str(e))
                if f"{name} --compile" in pending:
                    pending.remove(f"{name} --compile")
            results.append(result)
            pending.remove(name)
            save()
            gc.collect()
            if on_gpu:
                torch.cuda.empty_cache()
        for result, path in compiled:
            bench_ours_with(result, "ours --compile", dict(compile_=True), path, device, warmup, repeats)
            pending.remove(f"{result['model']} --compile")
            save()
    except KeyboardInterrupt:  # gpu_check.sh's time limit: the table of what finished (the JSON has it too)
        print(f"\ninterrupted; not measured: {', '.join(pending)}", file=sys.stderr)
    print_table(device, results)


if __name__ == "__main__":
    main()
