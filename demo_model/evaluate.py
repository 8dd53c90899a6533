"""Measure the demo checkpoint on the held-out colour/shape/position combinations, through the web UI's own engine.

    venv/bin/python -m demo_model.evaluate [--checkpoint models/Stable-diffusion/demo-shapes.safetensors]

Every held-out combination is prompted in plain words ("a small red star at the top left on a white background")
and generated with modules.processing at 20 steps, Euler a, CFG 7, the checkpoint's native size; the analytic judge
then reads the picture. Prints the share of pictures with the right colour, shape, position and background.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from demo_model import judge, shapes_data  # noqa: E402

DEFAULT_CHECKPOINT = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")
QUALITY_BAR = {"colour": 0.90, "shape": 0.75, "position": 0.80}


def load(checkpoint: str):
    """The checkpoint as shared.sd_model, by the same loader as any other checkpoint."""
    from modules import sd_models, shared
    info = getattr(shared.sd_model, "sd_checkpoint_info", None)
    if shared.sd_model is None or info is None or os.path.abspath(info.filename) != os.path.abspath(checkpoint):
        sd_models.load_model(sd_models.CheckpointInfo(checkpoint))
    return shared.sd_model


def generate(model, prompts, seed, negative_prompt="", size=64, steps=20, cfg_scale=7.0, sampler="Euler a"):
    """One picture per prompt, in one batch through processing.process_images (picture i gets seed + i)."""
    from modules import processing
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=model, prompt=list(prompts), negative_prompt=negative_prompt, steps=steps, cfg_scale=cfg_scale,
        width=size, height=size, seed=seed, sampler_name=sampler, batch_size=len(prompts), n_iter=1,
        do_not_save_samples=True, do_not_save_grid=True)
    result = processing.process_images(p)
    images = result.images[result.index_of_first_image:]
    if len(images) != len(prompts):
        raise RuntimeError(f"asked for {len(prompts)} pictures, got {len(images)}")
    return images


def evaluate(model, per_combo: int = 4, size: int = 64, batch: int = 16, seed: int = 1000, with_background=True,
             verbose=False, prompt_suffix=""):
    """Scores on the held-out combinations: {"colour": share, "shape": ..., "position": ..., "background": ...}.
    prompt_suffix is added to every prompt (a `<lora:...>` tag, to see what a network does to the known scenes)."""
    scenes = shapes_data.evaluation_scenes(per_combo)
    counts = {"colour": 0, "shape": 0, "position": 0, "background": 0, "all": 0}
    for start in range(0, len(scenes), batch):
        chunk = scenes[start:start + batch]
        prompts = [shapes_data.canonical_caption(s.objects[0], background=s.background if with_background else None)
                   for s in chunk]
        images = generate(model, [p + prompt_suffix for p in prompts], seed + start, size=size)
        for scene, prompt, image in zip(chunk, prompts, images):
            verdict = judge.judge(image)
            obj, found = scene.objects[0], verdict.main
            ok = {
                "colour": found is not None and found.colour == obj.colour,
                "shape": found is not None and found.shape == obj.shape,
                "position": found is not None and found.position == obj.position,
                "background": verdict.background == scene.background,
            }
            ok["all"] = all(ok.values())
            for key, good in ok.items():
                counts[key] += int(good)
            if verbose:
                seen = f"{found.colour} {found.shape} {found.position}" if found else "nothing"
                print(f"{prompt!r}: saw {seen} on {verdict.background}")
    return {key: value / len(scenes) for key, value in counts.items()}, len(scenes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    parser.add_argument("--per-combo", type=int, default=4, help="pictures per held-out combination")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--examples", metavar="PNG", help="also write a labelled grid of example pictures here")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.checkpoint):
        parser.error(f"--checkpoint: no file at {args.checkpoint}")

    sys.argv[1:] = ["--disable-console-progressbars"]  # the engine reads the web UI's flags from here
    import torch
    torch.set_num_threads(args.threads)
    model = load(args.checkpoint)
    began = time.time()
    scores, count = evaluate(model, args.per_combo, args.size, verbose=args.verbose)
    print(f"held-out combinations: {len(shapes_data.HELD_OUT_COMBOS)}, pictures: {count}, "
          f"20 steps, Euler a, CFG 7, {args.size}x{args.size} ({time.time() - began:.0f}s)")
    for key in ("colour", "shape", "position", "background", "all"):
        bar = QUALITY_BAR.get(key)
        verdict = "" if bar is None else ("  (bar {:.0%}: {})".format(bar, "met" if scores[key] >= bar else "NOT met"))
        print(f"  {key:<10} {scores[key]:6.1%}{verdict}")
    if args.examples:
        save_examples(model, args.examples, args.size)
    return scores


EXAMPLE_PROMPTS = [
    "a large red circle in the centre on a white background",
    "a small blue square at the top left on a yellow background",
    "green triangle, bottom right, black background",
    "a big yellow star on the left on a purple background",
]


def save_examples(model, path: str, size: int, seed: int = 1):
    """One picture per EXAMPLE_PROMPTS entry (20 steps, Euler a, CFG 7, seeds seed..), enlarged 4x side by side
    with its prompt underneath: the README's picture."""
    from PIL import Image, ImageDraw
    images = generate(model, EXAMPLE_PROMPTS, seed, size=size)
    scale, label = 4, 44
    sheet = Image.new("RGB", (len(images) * size * scale, size * scale + label), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (prompt, image) in enumerate(zip(EXAMPLE_PROMPTS, images)):
        sheet.paste(image.resize((size * scale, size * scale), Image.NEAREST), (i * size * scale, 0))
        words = prompt.split()
        half = (len(words) + 1) // 2
        for row, line in enumerate((" ".join(words[:half]), " ".join(words[half:]))):
            draw.text((i * size * scale + 4, size * scale + 4 + row * 18), line, fill="black")
    sheet.save(path)
    print(f"examples: {path} (seeds {seed}..{seed + len(images) - 1})")


if __name__ == "__main__":
    main()
