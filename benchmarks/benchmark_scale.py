"""Throughput with 1 and 2 Ray workers, against one process without Ray, and the front's overhead per job.

    venv/bin/python benchmarks/benchmark_scale.py                    # demo model, CPU workers, 64x64, 10 steps
    venv/bin/python benchmarks/benchmark_scale.py --jobs 40 --steps 20 --gpu   # one worker per GPU (a GPU machine)

Each row runs `--jobs` txt2img jobs submitted at once from `--clients` threads and waits for all of them; images
are saved by the front as in normal use. "single process" runs the same jobs one after another in this process
with no Ray. The front's overhead per job is the time a client waits minus the time the job took on its worker,
measured on jobs sent one at a time to an idle worker (queueing excluded): Ray's round trip, the result's transfer
and the front saving the image.
"""
import argparse
import copy
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DEMO = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--checkpoint", default=DEMO, help="checkpoint file (default: the demo model)")
    parser.add_argument("--gpu", action="store_true", help="one worker per GPU instead of CPU workers")
    parser.add_argument("--overhead-jobs", type=int, default=8, help="jobs sent one at a time for the overhead")
    return parser.parse_args()


def setup_environment(checkpoint):
    """A fresh data folder with the checkpoint, set before the engine reads its flags (workers inherit it)."""
    data_dir = tempfile.mkdtemp(prefix="sdwebui-scale-")
    ckpt_dir = os.path.join(data_dir, "models", "Stable-diffusion")
    os.makedirs(ckpt_dir)
    shutil.copy(checkpoint, ckpt_dir)
    os.environ["SD_WEBUI_DATA_DIR"] = data_dir
    os.environ["SD_WEBUI_TEST_ARGV"] = ""
    return os.path.basename(checkpoint)


def request(args, seed):
    return dict(prompt="a big blue star, top right, on yellow", steps=args.steps, width=args.size,
                height=args.size, seed=seed, sampler_name="Euler a", cfg_scale=7)


def run_single_process(args, seeds, unload=True):
    from modules import processing, sd_models, shared
    model = shared.sd_model  # loaded by initialize()
    opts = shared.opts
    started = time.perf_counter()
    for seed in seeds:
        p = processing.StableDiffusionProcessingTxt2Img(
            sd_model=model, outpath_samples=shared.data_relative(opts.outdir_txt2img_samples),
            outpath_grids=shared.data_relative(opts.outdir_txt2img_grids), **request(args, seed))
        processing.process_images(p)
    wall = time.perf_counter() - started
    if unload:
        sd_models.unload_model_weights()
    return wall


def run_queue(pool, args, seeds):
    """All jobs at once from `--clients` threads through the front's job queue (as the web UI and the API submit);
    (wall seconds, jobs per worker)."""
    from modules import job_queue
    from modules.distributed import executor
    queue = job_queue.JobQueue(executor=executor.RayExecutor())
    done_before = {w["name"]: w.get("jobs_done", 0) for w in pool.worker_states()}

    def client(number):
        jobs = [queue.submit("txt2img", request(args, seed), source=f"client-{number}")
                for seed in seeds[number::args.clients]]
        return [job.future.result(3600) for job in jobs]

    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as threads:
        list(threads.map(client, range(args.clients)))
    wall = time.perf_counter() - started
    time.sleep(2 * pool.poll_interval)  # the workers' job counts are refreshed after each job
    per_worker = {w["name"]: w.get("jobs_done", 0) - done_before.get(w["name"], 0) for w in pool.worker_states()}
    return wall, per_worker


def front_overhead(pool, args, seeds):
    """Median of (client's wait - worker's time) over jobs sent one at a time, in milliseconds."""
    from modules.distributed import front
    overheads, on_worker = [], []
    for seed in seeds:
        started = time.perf_counter()
        result = pool.submit(front.job_for(f"overhead-{seed}", "txt2img", request(args, seed))).wait(3600)
        overheads.append(time.perf_counter() - started - result.seconds)
        on_worker.append(result.seconds)
    return 1000 * statistics.median(overheads), statistics.median(on_worker)


def wait_ready(pool, count):
    deadline = time.time() + 1800
    while sum(w["status"] == "ready" for w in pool.worker_states()) < count:
        if time.time() > deadline:
            raise SystemExit(f"workers did not start: {pool.worker_states()}")
        time.sleep(0.5)


def main():
    args = parse_args()
    setup_environment(args.checkpoint)
    import torch
    from modules import initialize, shared
    from modules.distributed import cluster, front
    initialize.initialize(load_model_in_background=False)
    cpus = os.cpu_count() or 1
    seeds = list(range(1000, 1000 + args.jobs))
    rows = []

    # With 1 torch thread and with all cores: on a shared, overloaded CPU more threads can be many times slower.
    for threads in sorted({1, cpus}):
        torch.set_num_threads(threads)
        run_single_process(args, seeds[:2], unload=False)  # first jobs pay one-time costs, as for the workers
        wall = run_single_process(args, seeds, unload=threads == cpus)
        rows.append((f"single process (no Ray), {threads} thread{'s' if threads > 1 else ''}", 1, wall, None, "-"))
    baseline = min(row[2] for row in rows)

    overhead = None
    flags = copy.copy(shared.cmd_opts)
    flags.workers, flags.ray_workers = "ray", 2
    ray = cluster.connect(flags)
    gpus = ray.cluster_resources().get("GPU", 0)
    for workers in (1, 2):
        if args.gpu:  # one GPU each, or a share of the one GPU there is
            plan = [{"num_cpus": 1, "num_gpus": min(1.0, gpus / workers), "threads": None}] * workers
        else:
            plan = [{"num_cpus": 1, "num_gpus": 0, "threads": max(1, cpus // workers)}] * workers
        started = time.perf_counter()
        pool = front.start(flags, plan=plan)
        wait_ready(pool, workers)
        startup = time.perf_counter() - started
        run_queue(pool, args, seeds[:max(2, workers * 2)])   # first jobs pay one-time costs
        wall, per_worker = run_queue(pool, args, seeds)
        if workers == 1:
            overhead, worker_job_s = front_overhead(pool, args, seeds[:args.overhead_jobs])
        rows.append((f"{workers} Ray worker{'s' if workers > 1 else ''}", workers, wall, startup,
                     " ".join(f"{k}:{v}" for k, v in sorted(per_worker.items()))))
        front.stop()

    print(f"\n{args.jobs} txt2img jobs, {args.size}x{args.size}, {args.steps} steps, {args.clients} clients, "
          f"{f'GPU ({gpus:g} in the cluster)' if args.gpu else f'CPU ({cpus} cores)'}; checkpoint {os.path.basename(args.checkpoint)}\n")
    print("| setup | workers | wall s | jobs/s | speed-up (vs the faster single process) | workers' start-up s "
          "| jobs per worker |")
    print("|---|---|---|---|---|---|---|")
    for name, workers, wall, startup, spread in rows:
        print(f"| {name} | {workers} | {wall:.1f} | {args.jobs / wall:.2f} | {baseline / wall:.2f}x | "
              f"{'-' if startup is None else f'{startup:.0f}'} | {spread} |")
    print(f"\nfront overhead per job (client wait - worker time, 1 idle worker, median of {args.overhead_jobs} jobs "
          f"of {worker_job_s:.2f} s): {overhead:.0f} ms")


if __name__ == "__main__":
    main()
