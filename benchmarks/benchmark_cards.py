"""Benchmark: the Extra Networks Lora page with many LoRA files, server side and in a real browser.

    venv/bin/python benchmarks/benchmark_cards.py [--count 500] [--runs 3] [--keep]

Makes a data folder with the demo checkpoint and COUNT LoRA files (small kohya-layout safetensors with ss_* training
metadata, in ten subfolders, each with a 512x768 JPEG preview and every tenth with a NAME.json), then measures:
  * building the page's HTML in-process (listing, previews, NAME.json, cards) and its size;
  * in Debian's chromium (headless, Playwright): the page's load with those files present (goto -> prompt box
    shown), and the Lora tab's open time: from the click on the tab to the first card visible, and to all COUNT
    cards in the page; then a search keystroke and a sort over all cards.
Each browser run is a fresh page; the table gives the median and the range of --runs runs.
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


def browser_side(data_dir, count, runs):
    from playwright.sync_api import sync_playwright
    from tests.webui_server import WebuiServer, launch_browser
    results = {"load": [], "first": [], "all": [], "search": [], "sort": []}
    with WebuiServer(data_dir, ["--no-hashing"], timeout=600) as server, sync_playwright() as pw:
        browser = launch_browser(pw)
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            start = time.perf_counter()
            page.goto(server.url)
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
            search.fill("lora_01")
            page.wait_for_function("document.querySelector('#txt2img_lora_pane .extra-network-count').textContent.includes(' of ')",
                                   timeout=60000, polling=10)
            results["search"].append(time.perf_counter() - start)
            search.fill("")
            start = time.perf_counter()
            page.locator("#txt2img_lora_extra_sort").select_option("date_modified")
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
            results["sort"].append(time.perf_counter() - start)
            page.close()
        browser.close()
    return results


def row(label, values, unit="s"):
    values = sorted(values)
    return f"| {label} | {statistics.median(values):.3f} {unit} | {values[0]:.3f}-{values[-1]:.3f} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    data_dir = args.dir or tempfile.mkdtemp(prefix="bench-cards-")
    try:
        os.makedirs(os.path.join(data_dir, "models", "Stable-diffusion"), exist_ok=True)
        shutil.copy(DEMO, os.path.join(data_dir, "models", "Stable-diffusion"))
        start = time.perf_counter()
        make_loras(os.path.join(data_dir, "models", "Lora"), args.count)
        print(f"made {args.count} LoRA files with previews in {time.perf_counter() - start:.1f}s", flush=True)
        browser = browser_side(data_dir, args.count, args.runs)
        server, size = server_side(data_dir, args.runs)
        print(f"\nLora page with {args.count} LoRA files ({args.runs} runs)\n")
        print("| measure | median | range |\n|---|---|---|")
        print(row("page HTML built in-process", server) + f" ({size / 1024:.0f} KiB)")
        print(row("page load (goto -> prompt box)", browser["load"]))
        print(row("Lora tab click -> first card visible", browser["first"]))
        print(row(f"Lora tab click -> all {args.count} cards in the page", browser["all"]))
        print(row("search keystroke -> cards filtered", browser["search"]))
        print(row("sort by date over all cards", browser["sort"]))
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
