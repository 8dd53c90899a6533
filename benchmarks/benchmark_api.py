"""REST API cost: requests per second for /sdapi/v1/progress, and what a demo-model txt2img costs through the API
compared with calling the engine directly, all in one process so the three paths share the model and the machine.

    venv/bin/python benchmarks/benchmark_api.py                       # demo model, 64x64, 20 steps
    venv/bin/python benchmarks/benchmark_api.py --steps 5 --repeats 5 --clients 1,8,32

txt2img paths (each the median of --repeats runs, interleaved so background load hits them alike):
  engine   modules.txt2img.txt2img(request)                       the entry point itself
  queue    job_queue.queue.submit("txt2img", request)             + the job queue's hand-over
  api      POST /sdapi/v1/txt2img over HTTP                        + HTTP, JSON, validation, base64 PNG
progress: GET /sdapi/v1/progress from N concurrent clients for --seconds, while idle and while a job runs (then the
answer carries the live preview, encoded once per preview however many clients ask).
"""
import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("SD_WEBUI_DATA_DIR", tempfile.mkdtemp(prefix="sdwebui-bench-api-"))
os.environ.setdefault("SD_WEBUI_TEST_ARGV", "")
DEMO = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")


def start_server():
    """The --nowebui app on a free port in a thread of this process; returns its URL."""
    import socket

    import uvicorn

    from modules import gradio_compat
    gradio_compat.apply()
    from webui import api_only
    app = api_only.create_app()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    import requests
    for _ in range(200):
        try:
            requests.get(url + "/internal/ping", timeout=1)
            return url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("the API server did not start")


def time_interleaved(paths, repeats):
    times = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def progress_rate(url, clients, seconds):
    import requests
    stop = time.monotonic() + seconds
    counts = []

    def client():
        session, count = requests.Session(), 0
        while time.monotonic() < stop:
            response = session.get(url + "/sdapi/v1/progress", timeout=30)
            response.raise_for_status()
            count += 1
        counts.append(count)
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: client(), range(clients)))
    return sum(counts) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clients", default="1,8,32", help="concurrent progress clients, comma-separated")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each progress measurement runs")
    args = parser.parse_args()

    import requests

    from modules import initialize, job_queue, sd_models, shared, txt2img
    initialize.initialize(load_model_in_background=False)
    sd_models.load_model(sd_models.CheckpointInfo(DEMO))
    url = start_server()
    request = {"prompt": "a large red circle in the centre on a white background", "steps": args.steps, "width": 64,
               "height": 64, "seed": 1, "sampler_name": "Euler a", "do_not_save_samples": True, "do_not_save_grid": True}
    session = requests.Session()

    def through_api():
        response = session.post(url + "/sdapi/v1/txt2img", json=request, timeout=600)
        response.raise_for_status()

    paths = {"engine": lambda: txt2img.txt2img(dict(request)),
             "queue": lambda: job_queue.queue.submit("txt2img", dict(request)).future.result(),
             "api": through_api}
    time_interleaved(paths, 1)  # warm-up
    medians = time_interleaved(paths, args.repeats)

    print(f"\ntxt2img, demo model, 64x64, {args.steps} steps, median of {args.repeats} ({shared.device}, {os.cpu_count()} CPUs)\n")
    print("| path | seconds | overhead vs engine |")
    print("|---|---|---|")
    for name, seconds in medians.items():
        overhead = seconds - medians["engine"]
        print(f"| {name} | {seconds:.3f} | {overhead * 1000:+.1f} ms ({overhead / medians['engine'] * 100:+.1f}%) |")

    print(f"\nGET /sdapi/v1/progress, {args.seconds:.0f} s per row\n")
    print("| clients | idle: requests/s | during a job: requests/s |")
    print("|---|---|---|")
    long_request = {**request, "steps": 1000}  # interrupted once measured
    for clients in (int(x) for x in args.clients.split(",")):
        idle = progress_rate(url, clients, args.seconds)
        job = job_queue.queue.submit("txt2img", dict(long_request))
        while job.status != "running":
            time.sleep(0.01)
        busy = progress_rate(url, clients, args.seconds)
        job_queue.queue.interrupt(job.task_id)
        job.future.result()
        print(f"| {clients} | {idle:.0f} | {busy:.0f} |")


if __name__ == "__main__":
    main()
