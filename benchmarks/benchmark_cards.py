"""Benchmark: the Extra Networks Lora page with many LoRA files, server side and in a real browser.

    venv/bin/python benchmarks/benchmark_cards.py [--count 500] [--runs 3] [--keep]

Makes a data folder with the demo checkpoint and COUNT LoRA files (small kohya-layout safetensors with ss_* training
metadata, in ten subfolders, each with a 512x768 JPEG preview and every tenth with a NAME.json), then measures:
  * building the page's HTML in-process (listing, previews, NAME.json, cards) and its size;
  * in Debian's chromium (headless, Playwright): the page's load with those files present (goto -> prompt box
    shown), and the Lora tab's open time: from the click on the tab to the first card visible, and to all COUNT
    cards in the page; then a search keystroke and a sort over all cards.
Each browser run is a fresh page; the table gives the median and the range of --runs runs, beside the same on a
second server with --baseline LoRA files (both servers up at once, runs alternating, so load on the machine from
elsewhere falls on both alike).
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

DEMO = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")


def make_loras(folder, count):
    import torch
    from PIL import Image
    from safetensors.torch import save_file
    os.makedirs(folder, exist_ok=True)
    preview = os.path.join(folder, "_preview.jpg")
    Image.effect_mandelbrot((512, 768), (-2, -1.5, 1, 1.5), 50).convert("RGB").save(preview, quality=85)
    tensors = {"lora_unet_input_blocks_1_1_proj_in.lora_down.weight": torch.zeros(4, 32, 1, 1, dtype=torch.float16),
               "lora_unet_input_blocks_1_1_proj_in.lora_up.weight": torch.zeros(32, 4, 1, 1, dtype=torch.float16),
               "lora_unet_input_blocks_1_1_proj_in.alpha": torch.tensor(4.0, dtype=torch.float16)}
    tags = json.dumps({"set": {f"tag{i}": i for i in range(60)}})
    for i in range(count):
        sub = os.path.join(folder, f"style{i % 10}")
        os.makedirs(sub, exist_ok=True)
        name = f"lora_{i:04d}"
        save_file(tensors, os.path.join(sub, name + ".safetensors"),
                  metadata={"ss_output_name": name, "ss_network_dim": "4", "ss_base_model_version": "sd_v1",
                            "ss_tag_frequency": tags})
        shutil.copy(preview, os.path.join(sub, name + ".preview.jpg"))
        if i % 10 == 0:
            with open(os.path.join(sub, name + ".json"), "w") as f:
                json.dump({"activation text": f"trigger{i}", "preferred weight": 0.8, "description": "a style"}, f)
    os.remove(preview)


def server_side(data_dir, runs):
    """(seconds to build the Lora page's HTML, its size) in this process, median of runs."""
    os.environ["SD_WEBUI_DATA_DIR"] = data_dir
    sys.argv[1:] = ["--data-dir", data_dir]
    from modules import initialize, shared
    shared.cmd_opts.lora_dir = os.path.join(data_dir, "models", "Lora")
    initialize.load_extra_networks()
    from modules.ui_extra_networks_lora import ExtraNetworksPageLora
    page = ExtraNetworksPageLora()
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        html = page.create_html("txt2img")
        times.append(time.perf_counter() - start)
        size = len(html.encode())
    return times, size


def browser_side(data_dirs, runs):
    """{count: {measure: [seconds]}} for each {count: data folder}; one server per folder, all up at once, and the
    runs alternate between them, so that the machine's other load falls on each alike."""
    from contextlib import ExitStack

    from playwright.sync_api import sync_playwright
    from tests.webui_server import WebuiServer, launch_browser
    results = {count: {"load": [], "first": [], "all": [], "search": [], "sort": []} for count in data_dirs}
    with ExitStack() as stack:
        servers = {count: stack.enter_context(WebuiServer(folder, ["--no-hashing"], timeout=600))
                   for count, folder in data_dirs.items()}
        browser = launch_browser(stack.enter_context(sync_playwright()))
        for _ in range(runs):
            for count, server in servers.items():
                measure_once(browser, server.url, count, results[count])
    return results


def measure_once(browser, url, count, results):
    """A fresh page: load, open the Lora tab, search, sort."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    start = time.perf_counter()
    page.goto(url)
    page.locator("#txt2img_prompt textarea").wait_for(timeout=300000)
    results["load"].append(time.perf_counter() - start)
    tab = page.locator("#txt2img_extra_tabs button[role=tab]", has_text="Lora")
    start = time.perf_counter()
    tab.click()
    page.locator("#txt2img_lora_cards .card").first.wait_for(state="visible", timeout=120000)
    results["first"].append(time.perf_counter() - start)
    page.wait_for_function(f"document.querySelectorAll('#txt2img_lora_cards .card').length === {count}",
                           timeout=120000, polling=10)
    results["all"].append(time.perf_counter() - start)
    search = page.locator("#txt2img_lora_extra_search")
    start = time.perf_counter()
    search.fill("lora_0001")
    page.wait_for_function("document.querySelector('#txt2img_lora_pane .extra-network-count').textContent.includes(' of ')",
                           timeout=60000, polling=10)
    results["search"].append(time.perf_counter() - start)
    search.fill("")
    start = time.perf_counter()
    page.locator("#txt2img_lora_extra_sort").select_option("date_modified")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
    results["sort"].append(time.perf_counter() - start)
    page.close()


def cell(values):
    values = sorted(values)
    return f"{statistics.median(values):.3f} s ({values[0]:.3f}-{values[-1]:.3f})"


def make_data_dir(folder, count):
    os.makedirs(os.path.join(folder, "models", "Stable-diffusion"), exist_ok=True)
    shutil.copy(DEMO, os.path.join(folder, "models", "Stable-diffusion"))
    make_loras(os.path.join(folder, "models", "Lora"), count)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--baseline", type=int, default=10, help="LoRA files of the comparison server")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="bench-cards-")
    try:
        start = time.perf_counter()
        data_dirs = {count: make_data_dir(os.path.join(work, f"loras-{count}"), count)
                     for count in (args.baseline, args.count)}
        print(f"made {args.count} + {args.baseline} LoRA files with previews in {time.perf_counter() - start:.1f}s",
              flush=True)
        browser = browser_side(data_dirs, args.runs)
        server, size = server_side(data_dirs[args.count], args.runs)
        print(f"\nLora page with {args.count} LoRA files against {args.baseline}: median (range) of {args.runs} runs, "
              f"the two servers up at once, runs alternating\n")
        print(f"| measure | {args.baseline} LoRA files | {args.count} LoRA files |\n|---|---|---|")
        print(f"| page HTML built in-process | | {cell(server)} ({size / 1024:.0f} KiB) |")
        labels = {"load": "page load (goto -> prompt box)", "first": "Lora tab click -> first card visible",
                  "all": "Lora tab click -> all cards in the page", "search": "search keystroke -> cards filtered",
                  "sort": "sort by date over all cards"}
        for key, label in labels.items():
            print(f"| {label} | {cell(browser[args.baseline][key])} | {cell(browser[args.count][key])} |")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
