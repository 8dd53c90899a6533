"""Start-up time of the web UI with every corpus extension installed against none.

    python benchmarks/benchmark_extension_startup.py [--runs 1]

Each run starts `launch.py --skip-prepare-environment` on a fresh data folder (the tiny test checkpoint, and for the
"with" row every extension of shared/extension-corpus copied into its extensions/ folder) and reads the "Startup
time" line the web UI prints once the page is served. Prints a table of seconds.
"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.checkpoint_factory import make_tiny_sd1_checkpoint  # noqa: E402
from tests.extension_helpers import CORPUS, copy_corpus_extension  # noqa: E402
from tests.webui_server import WebuiServer  # noqa: E402


def startup_seconds(with_extensions):
    data = tempfile.mkdtemp(prefix="startup-bench-")
    try:
        make_tiny_sd1_checkpoint(os.path.join(data, "models", "Stable-diffusion", "tiny.safetensors"))
        os.makedirs(os.path.join(data, "extensions"))
        names = sorted(n for n in os.listdir(CORPUS) if os.path.isdir(os.path.join(CORPUS, n))) if with_extensions else []
        for name in names:
            copy_corpus_extension(os.path.join(data, "extensions"), name)
        if with_extensions:  # its optional wildcard collections were left out of the corpus export
            os.makedirs(os.path.join(data, "extensions", "sd-dynamic-prompts", "collections"), exist_ok=True)
        began = time.perf_counter()
        with WebuiServer(data, timeout=900) as server:
            answered = time.perf_counter() - began
            deadline = time.time() + 60
            while "Startup time:" not in server.read_log() and time.time() < deadline:
                time.sleep(0.5)
            printed = re.search(r"Startup time: ([\d.]+)s", server.read_log())
        return len(names), (float(printed.group(1)) if printed else float("nan")), answered
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for with_extensions in (False, True):
        for _ in range(args.runs):
            rows.append(startup_seconds(with_extensions))
    print(f"{'extensions':>10} | {'startup time printed (s)':>24} | {'page answered after (s)':>23}")
    for count, printed, answered in rows:
        print(f"{count:>10} | {printed:>24.1f} | {answered:>23.1f}")


if __name__ == "__main__":
    main()
