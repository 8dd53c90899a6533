"""Measure what the demo LoRA does, through the web UI's own engine and its `<lora:...>` tag.

    venv/bin/python -m demo_model.evaluate_lora [--seeds 4] [--preview models/Lora/demo-turquoise.preview.png]

Prompts name the colour the LoRA teaches ("a large turquoise star in the centre on a black background") for every
shape and position on a few backgrounds; each is generated with `<lora:demo-turquoise:1>` and without it, same
seed (20 steps, Euler a, CFG 7, 64x64), and the judge (with turquoise added to its palette) names the colour drawn.
It also scores the checkpoint's held-out combinations (no turquoise in them) with the LoRA on, to show the nine
colours it knew are kept. --preview writes the card's preview picture.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from demo_model import evaluate, judge, shapes_data  # noqa: E402
from demo_model.train_lora import LORA_NAME, NEW_COLOUR, PALETTE  # noqa: E402

BACKGROUNDS = ("white", "black", "purple")
POSITIONS = ("centre", "top left", "bottom right")
TAG = f"<lora:{LORA_NAME}:1>"


def turquoise_prompts():
    return [shapes_data.canonical_caption(colour=NEW_COLOUR, shape=shape, position=position, size="large",
                                          background=background)
            for background in BACKGROUNDS for shape in shapes_data.SHAPES for position in POSITIONS]


def colours_drawn(model, prompts, seed, with_lora: bool):
    """The judge's colour of the main shape in each picture (None when it finds no shape)."""
    suffix = " " + TAG if with_lora else ""
    images = evaluate.generate(model, [p + suffix for p in prompts], seed)
    found = [judge.judge(image, palette=PALETTE).main for image in images]
    return [f.colour if f is not None else None for f in found], images


def measure(model, seeds):
    """{with_lora: (turquoise count, total, {colour: count})} over the prompts and seeds."""
    prompts = turquoise_prompts()
    results = {}
    for with_lora in (False, True):
        counts = {}
        for seed in seeds:
            colours, _ = colours_drawn(model, prompts, seed, with_lora)
            for colour in colours:
                counts[colour] = counts.get(colour, 0) + 1
        total = len(prompts) * len(seeds)
        results[with_lora] = (counts.get(NEW_COLOUR, 0), total, counts)
    return results


def save_preview(model, path, seed=7):
    """The card's picture: a turquoise star on black, made with the LoRA, enlarged 4x (nearest neighbour)."""
    from PIL import Image
    prompt = shapes_data.canonical_caption(colour=NEW_COLOUR, shape="star", position="centre", size="large",
                                           background="black")
    image = evaluate.generate(model, [f"{prompt} {TAG}"], seed)[0]
    image.resize((image.width * 4, image.height * 4), Image.NEAREST).save(path)
    print(f"preview: {path} ({prompt!r} {TAG}, seed {seed})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=evaluate.DEFAULT_CHECKPOINT)
    parser.add_argument("--seeds", type=int, default=4, help="seeds 1000, 2000, ... per prompt")
    parser.add_argument("--per-combo", type=int, default=2, help="pictures per held-out combination (0: skip)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preview", metavar="PNG", help="also write the card's preview picture here")
    args = parser.parse_args(argv)

    sys.argv[1:] = ["--disable-console-progressbars"]  # the engine reads the web UI's flags from here
    import torch
    torch.set_num_threads(args.threads)
    from modules import initialize
    model = evaluate.load(args.checkpoint)
    initialize.load_extra_networks()
    began = time.time()
    seeds = [1000 * (i + 1) for i in range(args.seeds)]
    results = measure(model, seeds)
    print(f"{len(turquoise_prompts())} prompts naming '{NEW_COLOUR}' x {len(seeds)} seeds, "
          f"20 steps, Euler a, CFG 7, 64x64 ({time.time() - began:.0f}s)")
    for with_lora in (False, True):
        hits, total, counts = results[with_lora]
        label = f"with {TAG}" if with_lora else "without the LoRA"
        drawn = ", ".join(f"{c} {n}" for c, n in sorted(counts.items(), key=lambda x: -x[1]))
        print(f"  {label:<28} turquoise {hits}/{total} ({hits / total:.1%}); drawn: {drawn}")
    if args.per_combo:
        plain, count = evaluate.evaluate(model, args.per_combo)
        with_lora, _ = evaluate.evaluate(model, args.per_combo, prompt_suffix=" " + TAG)
        print(f"held-out combinations of the nine known colours ({count} pictures):")
        for key in ("colour", "shape", "position", "background"):
            print(f"  {key:<10} without {plain[key]:6.1%}   with the LoRA {with_lora[key]:6.1%}")
    if args.preview:
        save_preview(model, args.preview)
    return results


if __name__ == "__main__":
    main()
