"""Filling a tab's controls from an infotext (the ↙️ button, PNG Info's "Send to")."""
import math
import os

import gradio as gr

from modules import script_callbacks, sd_samplers, shared
from webui import script_runner_ui


def paste_targets(form, seed, hires):
    """(infotext key, component) pairs, A1111's paste fields for the generation tabs."""
    targets = [
        ("Prompt", form["prompt"]), ("Negative prompt", form["negative_prompt"]), ("Steps", form["steps"]),
        ("Sampler", form["sampler_name"]), ("Schedule type", form["scheduler"]), ("CFG scale", form["cfg_scale"]),
        ("Seed", form["seed"]), ("Size-1", form["width"]), ("Size-2", form["height"]),
        ("Batch size", form["batch_size"]),
        ("Variation seed", seed.subseed), ("Variation seed strength", seed.subseed_strength),
        ("Seed resize from-1", seed.seed_resize_from_w), ("Seed resize from-2", seed.seed_resize_from_h),
        ("__seed_extras", seed.extras),
    ]
    if hires is not None:
        targets += [
            ("__enable_hr", hires.enable), ("Denoising strength", hires.denoising_strength),
            ("Hires upscale", hires.scale), ("Hires upscaler", hires.upscaler), ("Hires steps", hires.steps),
            ("Hires resize-1", hires.resize_x), ("Hires resize-2", hires.resize_y),
            ("Hires checkpoint", hires.checkpoint), ("Hires sampler", hires.sampler), ("Hires schedule type", hires.scheduler),
            ("Hires prompt", hires.prompt), ("Hires negative prompt", hires.negative_prompt),
        ]
        if getattr(hires, "accordion", None) is not None:
            targets.append(("__open_hr", hires.accordion))  # pasted hires settings are shown, not hidden
    elif "denoising_strength" in form:
        targets.append(("Denoising strength", form["denoising_strength"]))
    return targets


def read_last_params():
    path = os.path.join(shared.data_path, "params.txt")
    if os.path.exists(path):
        with open(path, encoding="utf8") as file:
            return file.read()
    return ""


def parse(text: str) -> dict:
    from modules import infotext_utils
    params = infotext_utils.parse_generation_parameters(text)
    script_callbacks.infotext_pasted_callback(text, params)
    try:
        sampler, scheduler = sd_samplers.get_sampler_and_scheduler(params.get("Sampler"), params.get("Schedule type"), convert_automatic=False)
    except ValueError:  # a sampler or schedule this program does not have: the pasted names stay as written
        return params
    if sampler:
        params["Sampler"] = sampler
    if scheduler:
        params["Schedule type"] = scheduler
    return params


def _cast(value, component):
    if isinstance(component, gr.Slider) or isinstance(component, gr.Number):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return gr.update()
        if not math.isfinite(number) or abs(number) >= 2 ** 63:  # no field holds it, and the page cannot take it
            return gr.update()
        number = int(number) if number.is_integer() else number
        low, high = getattr(component, "minimum", None), getattr(component, "maximum", None)
        if isinstance(component, gr.Slider) and low is not None and high is not None and not low <= number <= high:
            # shown and sent as written (A1111's sliders took it; "Steps: 200" from an API image): Gradio 6 refuses a
            # value outside the range at Generate, so the range widens; Generate checks the value by name
            return gr.update(value=number, minimum=min(low, number), maximum=max(high, number))
        return number
    if isinstance(component, gr.Checkbox):
        return str(value).lower() == "true" if isinstance(value, str) else bool(value)
    return value


def script_components(runner):
    """The controls the tab's scripts fill from an infotext (A1111: each script's infotext_fields, e.g. the
    Refiner's checkpoint and "Switch at"); pasted after the `targets`' components."""
    return script_runner_ui.infotext_components(runner) if runner is not None else []


def apply_infotext(text: str, targets, runner=None):
    """Values for every target component, then for the `runner`'s script components: pasted values where the
    infotext has them, unchanged otherwise."""
    if not text or not text.strip():
        text = read_last_params()
    if not text.strip():
        return [gr.update() for _ in [*targets, *script_components(runner)]]
    params = parse(text)
    has_seed_extras = any(k in params for k in ("Variation seed", "Seed resize from-1"))
    has_hires = "Denoising strength" in params and any(k in params for k in ("Hires upscale", "Hires upscaler", "Hires resize-1"))
    values = []
    for key, component in targets:
        if key == "__seed_extras":
            values.append(has_seed_extras)
        elif key == "__enable_hr":
            values.append(has_hires)
        elif key == "__open_hr":
            values.append(gr.update(open=True) if has_hires else gr.update())
        elif key in params:
            values.append(_cast(params[key], component))
        else:
            values.append(gr.update())
    if runner is not None:
        # cast as the tab's own fields are: a Gradio 6 slider refuses the text "0.8" (Refiner switch at) at Generate
        script_values = script_runner_ui.infotext_values(runner, params)
        values += [v if isinstance(v, dict) else _cast(v, c) for v, c in zip(script_values, script_components(runner))]
    return values
