"""X/Y/Z plot: one image per combination of up to three axes of settings, laid out in labelled grids.

Built on the public API only (processing, images, sd_samplers, sd_models, shared). Extensions add axes the
A1111 way: find this module in `scripts.scripts_data` by module name "xyz_grid.py", then
`xyz_grid.axis_options.append(xyz_grid.AxisOption(label, type, apply, ...))`.
"""
import csv
import io
import itertools
import random
import re
from copy import copy

import numpy as np

import modules.scripts as scripts
from modules import errors, images, processing, sd_models, sd_vae, shared
from modules.processing import Processed, process_images
from modules.shared import opts, state


# ---------------------------------------------------------------------------------------------- applying values

def apply_field(field):
    def fun(p, x, xs):
        setattr(p, field, x)
    return fun


def apply_prompt(p, x, xs):
    """Prompt S/R: replace the first value (the search text) by `x` in the prompt and negative prompt."""
    if xs[0] not in p.prompt and xs[0] not in p.negative_prompt:
        raise RuntimeError(f"Prompt S/R did not find {xs[0]} in prompt or negative prompt.")
    p.prompt = p.prompt.replace(xs[0], x)
    p.negative_prompt = p.negative_prompt.replace(xs[0], x)
    for field in ("hr_prompt", "hr_negative_prompt"):
        value = getattr(p, field, None)
        if isinstance(value, str) and value:
            setattr(p, field, value.replace(xs[0], x))


def apply_order(p, x, xs):
    """Prompt order: the listed tokens are put back into the prompt in the order given by this permutation."""
    token_order = sorted(((p.prompt.find(token), token) for token in x), key=lambda t: t[0])
    if any(pos < 0 for pos, _ in token_order):
        missing = next(token for pos, token in token_order if pos < 0)
        raise RuntimeError(f"Prompt order did not find {missing} in prompt.")
    prompt_parts = []
    for _, token in token_order:
        n = p.prompt.find(token)
        prompt_parts.append(p.prompt[0:n])
        p.prompt = p.prompt[n + len(token):]
    prompt_tmp = ""
    for idx, part in enumerate(prompt_parts):
        prompt_tmp += part
        prompt_tmp += x[idx]
    p.prompt = prompt_tmp + p.prompt


def _sampler_names():
    from modules import sd_samplers
    return sd_samplers.visible_sampler_names()


def _sampler_name(x):
    from modules import sd_samplers
    name = sd_samplers.samplers_map.get(str(x).lower(), None)
    if name is None:
        raise RuntimeError(f"Unknown sampler: {x}")
    return name


def apply_sampler(p, x, xs):
    p.sampler_name = _sampler_name(x)


def apply_hr_sampler(p, x, xs):
    p.hr_sampler_name = _sampler_name(x)


def confirm_samplers(p, xs):
    for x in xs:
        _sampler_name(x)


def _scheduler_labels():
    from modules import sd_schedulers
    return [x.label for x in sd_schedulers.schedulers]


def apply_checkpoint(p, x, xs):
    info = sd_models.get_closet_checkpoint_match(x)
    if info is None:
        raise RuntimeError(f"Unknown checkpoint: {x}")
    p.override_settings["sd_model_checkpoint"] = info.name


def confirm_checkpoints(p, xs):
    for x in xs:
        if sd_models.get_closet_checkpoint_match(x) is None:
            raise RuntimeError(f"Unknown checkpoint: {x}")


def confirm_checkpoints_or_none(p, xs):
    for x in xs:
        if x in (None, "", "None", "none"):
            continue
        if sd_models.get_closet_checkpoint_match(x) is None:
            raise RuntimeError(f"Unknown checkpoint: {x}")


def apply_refiner(p, x, xs):
    if x in (None, "", "None", "none"):
        p.refiner_checkpoint = None
        return
    info = sd_models.get_closet_checkpoint_match(x)
    if info is None:
        raise RuntimeError(f"Unknown checkpoint: {x}")
    p.refiner_checkpoint = info.name


def apply_clip_skip(p, x, xs):
    p.override_settings["CLIP_stop_at_last_layers"] = x


def apply_upscale_latent_space(p, x, xs):
    p.override_settings["use_scale_latent_for_hires_fix"] = x != "0"


def _vae_choices():
    return ["Automatic", "None"] + sorted(sd_vae.vae_dict)


def apply_vae(p, x, xs):
    name = str(x).strip()
    choices = {c.lower(): c for c in _vae_choices()}
    p.override_settings["sd_vae"] = choices.get(name.lower(), name)


def apply_styles(p, x, _):
    p.styles.extend(s.strip() for s in x.split(",") if s.strip())


def apply_uni_pc_order(p, x, xs):
    p.override_settings["uni_pc_order"] = min(x, p.steps - 1)


def apply_face_restore(p, opt, x):
    opt = str(opt).lower()
    if opt == "codeformer":
        is_active, model = True, "CodeFormer"
    elif opt == "gfpgan":
        is_active, model = True, "GFPGAN"
    else:
        is_active, model = opt in ("true", "yes", "y", "1"), None
    p.restore_faces = is_active
    if model is not None:
        p.override_settings["face_restoration_model"] = model


def apply_override(field, boolean: bool = False):
    def fun(p, x, xs):
        if boolean:
            x = str(x).lower() == "true"
        p.override_settings[field] = x
    return fun


def boolean_choice(reverse: bool = False):
    def choice():
        return ["False", "True"] if reverse else ["True", "False"]
    return choice


def apply_size(p, x: str, xs) -> None:
    try:
        width, _, height = str(x).partition("x")
        p.width, p.height = int(width.strip()), int(height.strip())
    except ValueError:
        raise RuntimeError(f"Invalid size in XYZ plot: {x} (expected WIDTHxHEIGHT, e.g. 512x768)") from None


# ---------------------------------------------------------------------------------------------- formatting values

def format_value_add_label(p, opt, x):
    if type(x) is float:
        x = round(x, 8)
    return f"{opt.label}: {x}"


def format_value(p, opt, x):
    if type(x) is float:
        x = round(x, 8)
    return x


def format_value_join_list(p, opt, x):
    return ", ".join(x)


def format_remove_path(p, opt, x):
    import os
    return os.path.basename(str(x))


def format_nothing(p, opt, x):
    return ""


def do_nothing(p, x, xs):
    pass


def str_permutations(x):
    """dummy function for specifying it in AxisOption's type when you want to get a list of permutations"""
    return x


def list_to_csv_string(data_list):
    with io.StringIO() as o:
        csv.writer(o).writerow(data_list)
        return o.getvalue().strip()


def csv_string_to_list_strip(data_str):
    return list(map(str.strip, itertools.chain.from_iterable(csv.reader(io.StringIO(data_str), skipinitialspace=True))))


# ---------------------------------------------------------------------------------------------- axis options

class AxisOption:
    def __init__(self, label, type, apply, format_value=format_value_add_label, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label = label
        self.type = type
        self.apply = apply
        self.format_value = format_value
        self.confirm = confirm
        self.cost = cost
        self.prepare = prepare
        self.choices = choices


class AxisOptionImg2Img(AxisOption):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_img2img = True


class AxisOptionTxt2Img(AxisOption):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_img2img = False


axis_options = [
    AxisOption("Nothing", str, do_nothing, format_value=format_nothing),
    AxisOption("Seed", int, apply_field("seed")),
    AxisOption("Var. seed", int, apply_field("subseed")),
    AxisOption("Var. strength", float, apply_field("subseed_strength")),
    AxisOption("Steps", int, apply_field("steps")),
    AxisOptionTxt2Img("Hires steps", int, apply_field("hr_second_pass_steps")),
    AxisOption("CFG Scale", float, apply_field("cfg_scale")),
    AxisOptionImg2Img("Image CFG Scale", float, apply_field("image_cfg_scale")),
    AxisOption("Prompt S/R", str, apply_prompt, format_value=format_value),
    AxisOption("Prompt order", str_permutations, apply_order, format_value=format_value_join_list),
    AxisOptionTxt2Img("Sampler", str, apply_sampler, format_value=format_value, confirm=confirm_samplers, choices=_sampler_names),
    AxisOptionTxt2Img("Hires sampler", str, apply_hr_sampler, format_value=format_value, confirm=confirm_samplers, choices=_sampler_names),
    AxisOptionImg2Img("Sampler", str, apply_sampler, format_value=format_value, confirm=confirm_samplers, choices=_sampler_names),
    AxisOption("Checkpoint name", str, apply_checkpoint, format_value=format_remove_path, confirm=confirm_checkpoints, cost=1.0,
               choices=lambda: sorted(sd_models.checkpoints_list, key=str.casefold)),
    AxisOption("Negative Guidance minimum sigma", float, apply_field("s_min_uncond")),
    AxisOption("Sigma Churn", float, apply_field("s_churn")),
    AxisOption("Sigma min", float, apply_field("s_tmin")),
    AxisOption("Sigma max", float, apply_field("s_tmax")),
    AxisOption("Sigma noise", float, apply_field("s_noise")),
    AxisOption("Schedule type", str, apply_field("scheduler"), choices=_scheduler_labels),
    AxisOption("Schedule min sigma", float, apply_override("sigma_min")),
    AxisOption("Schedule max sigma", float, apply_override("sigma_max")),
    AxisOption("Schedule rho", float, apply_override("rho")),
    AxisOption("Beta schedule alpha", float, apply_override("beta_dist_alpha")),
    AxisOption("Beta schedule beta", float, apply_override("beta_dist_beta")),
    AxisOption("Eta", float, apply_field("eta")),
    AxisOption("Clip skip", int, apply_clip_skip),
    AxisOption("Denoising", float, apply_field("denoising_strength")),
    AxisOption("Initial noise multiplier", float, apply_field("initial_noise_multiplier")),
    AxisOption("Extra noise", float, apply_override("img2img_extra_noise")),
    AxisOptionTxt2Img("Hires upscaler", str, apply_field("hr_upscaler"),
                      choices=lambda: [*shared.latent_upscale_modes, *[x.name for x in shared.sd_upscalers]]),
    AxisOptionImg2Img("Cond. Image Mask Weight", float, apply_field("inpainting_mask_weight")),
    AxisOption("VAE", str, apply_vae, cost=0.7, choices=_vae_choices),
    AxisOption("Styles", str, apply_styles,
               choices=lambda: list(shared.prompt_styles.styles) if shared.prompt_styles is not None else []),
    AxisOption("UniPC Order", int, apply_uni_pc_order, cost=0.5),
    AxisOption("Face restore", str, apply_face_restore, format_value=format_value),
    AxisOption("Token merging ratio", float, apply_override("token_merging_ratio")),
    AxisOption("Token merging ratio high-res", float, apply_override("token_merging_ratio_hr")),
    AxisOption("Always discard next-to-last sigma", str, apply_override("always_discard_next_to_last_sigma", boolean=True),
               choices=boolean_choice(reverse=True)),
    AxisOption("SGM noise multiplier", str, apply_override("sgm_noise_multiplier", boolean=True), choices=boolean_choice(reverse=True)),
    AxisOption("Refiner checkpoint", str, apply_refiner, format_value=format_remove_path, confirm=confirm_checkpoints_or_none,
               cost=1.0, choices=lambda: ["None"] + sorted(sd_models.checkpoints_list, key=str.casefold)),
    AxisOption("Refiner switch at", float, apply_field("refiner_switch_at")),
    AxisOption("RNG source", str, apply_override("randn_source"), choices=lambda: ["GPU", "CPU", "NV"]),
    AxisOption("FP8 mode", str, apply_override("fp8_storage"), cost=0.9, choices=lambda: ["Disable", "Enable for SDXL", "Enable"]),
    AxisOption("Size", str, apply_size),
]


# ---------------------------------------------------------------------------------------------- value lists

re_range = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\(([+-]\d+)\s*\))?\s*")
re_range_float = re.compile(r"\s*([+-]?\s*\d+(?:\.\d*)?)\s*-\s*([+-]?\s*\d+(?:\.\d*)?)(?:\s*\(([+-]\d+(?:\.\d*)?)\s*\))?\s*")
re_range_count = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\[(\d+)\s*\])?\s*")
re_range_count_float = re.compile(r"\s*([+-]?\s*\d+(?:\.\d*)?)\s*-\s*([+-]?\s*\d+(?:\.\d*)?)(?:\s*\[(\d+(?:\.\d*)?)\s*\])?\s*")


def _num(text, kind):
    return kind(text.replace(" ", ""))


def _check_step(opt, text, step):
    if step == 0:  # range() and arange() refuse it without saying which axis or value
        raise RuntimeError(f"X/Y/Z plot: invalid value for axis {opt.label}: the step of {text!r} must not be zero")


def expand_values(opt, vals, vals_dropdown=None, csv_mode=False):
    """The list of typed values for one axis from its text (CSV with ranges) or its dropdown selection."""
    if opt.label == "Nothing":
        return [0]

    if opt.choices is not None and not csv_mode and vals_dropdown is not None:
        valslist = list(vals_dropdown)
    elif opt.choices is not None and not csv_mode and isinstance(vals, (list, tuple)):
        valslist = list(vals)
    else:
        valslist = csv_string_to_list_strip(vals or "")

    if opt.type == int:
        expanded = []
        for val in valslist:
            if str(val).strip() == "":
                continue
            m = re_range.fullmatch(str(val))
            mc = re_range_count.fullmatch(str(val))
            if m is not None:
                start, end = _num(m.group(1), int), _num(m.group(2), int)
                step = _num(m.group(3), int) if m.group(3) is not None else 1
                _check_step(opt, val, step)
                expanded += list(range(start, end + (1 if step > 0 else -1), step))
            elif mc is not None and mc.group(3) is not None:
                start, end, num = _num(mc.group(1), int), _num(mc.group(2), int), int(mc.group(3))
                expanded += [int(x) for x in np.linspace(start=start, stop=end, num=num).tolist()]
            else:
                expanded.append(val)
        valslist = expanded
    elif opt.type == float:
        expanded = []
        for val in valslist:
            if str(val).strip() == "":
                continue
            m = re_range_float.fullmatch(str(val))
            mc = re_range_count_float.fullmatch(str(val))
            if m is not None:
                start, end = _num(m.group(1), float), _num(m.group(2), float)
                step = _num(m.group(3), float) if m.group(3) is not None else 1
                _check_step(opt, val, step)
                expanded += np.arange(start, end + step, step).tolist()
            elif mc is not None and mc.group(3) is not None:
                start, end, num = _num(mc.group(1), float), _num(mc.group(2), float), int(float(mc.group(3)))
                expanded += np.linspace(start=start, stop=end, num=num).tolist()
            else:
                expanded.append(val)
        valslist = expanded
    elif opt.type == str_permutations:
        valslist = list(itertools.permutations(valslist))

    try:
        valslist = [opt.type(x) for x in valslist]
    except (TypeError, ValueError) as e:
        raise RuntimeError(f"X/Y/Z plot: invalid value for axis {opt.label}: {e}") from None
    return valslist


def fix_axis_seeds(axis_opt, axis_list):
    if axis_opt.label in ("Seed", "Var. seed"):
        return [int(random.randrange(4294967294)) if val is None or val == "" or val == -1 else val for val in axis_list]
    return axis_list


# ---------------------------------------------------------------------------------------------- the grid

class SharedSettingsStackHelper:
    """Settings that axes change through opts directly are restored when the plot ends."""

    def __enter__(self):
        self.vae = opts.sd_vae
        self.uni_pc_order = opts.uni_pc_order

    def __exit__(self, exc_type, exc_value, tb):
        opts.data["sd_vae"] = self.vae
        if self.uni_pc_order is not None:
            opts.data["uni_pc_order"] = self.uni_pc_order


def _axis_loop_order(x_opt, y_opt, z_opt):
    """Slow-to-change axes (checkpoint, VAE) go to the outer loops; ties keep z outermost, x innermost."""
    axes = [("z", z_opt.cost), ("y", y_opt.cost), ("x", x_opt.cost)]
    return [name for name, _ in sorted(axes, key=lambda a: -a[1])]


def draw_xyz_grid(p, xs, ys, zs, x_labels, y_labels, z_labels, cell, draw_legend, include_lone_images,
                  include_sub_grids, first_axes_processed, second_axes_processed, margin_size):
    """Run `cell` for every combination; return a Processed whose images are [z-grid, sub-grids..., cells...]."""
    hor_texts = [[images.GridAnnotation(x)] for x in x_labels]
    ver_texts = [[images.GridAnnotation(y)] for y in y_labels]
    title_texts = [[images.GridAnnotation(z)] for z in z_labels]

    list_size = len(xs) * len(ys) * len(zs)
    processed_result = None
    produced_any = False
    state.job_count = list_size * p.n_iter

    def index(ix, iy, iz):
        return ix + iy * len(xs) + iz * len(xs) * len(ys)

    def process_cell(x, y, z, ix, iy, iz):
        nonlocal processed_result, produced_any
        state.job = f"{index(ix, iy, iz) + 1} out of {list_size}"
        processed = cell(x, y, z, ix, iy, iz)

        if processed_result is None:
            processed_result = copy(processed)
            processed_result.images = [None] * list_size
            processed_result.all_prompts = [None] * list_size
            processed_result.all_seeds = [None] * list_size
            processed_result.infotexts = [None] * list_size
            processed_result.index_of_first_image = 1

        idx = index(ix, iy, iz)
        if processed.images:
            produced_any = True
            processed_result.images[idx] = processed.images[0]
            processed_result.all_prompts[idx] = processed.prompt
            processed_result.all_seeds[idx] = processed.seed
            processed_result.infotexts[idx] = processed.infotexts[0] if processed.infotexts else processed.info

    ranges = {"x": range(len(xs)), "y": range(len(ys)), "z": range(len(zs))}
    values = {"x": xs, "y": ys, "z": zs}
    order = [first_axes_processed, second_axes_processed]
    order.append(next(a for a in ("z", "y", "x") if a not in order))
    for i0 in ranges[order[0]]:
        for i1 in ranges[order[1]]:
            for i2 in ranges[order[2]]:
                idx = {order[0]: i0, order[1]: i1, order[2]: i2}
                ix, iy, iz = idx["x"], idx["y"], idx["z"]
                process_cell(xs[ix], ys[iy], zs[iz], ix, iy, iz)

    if not processed_result:
        print("Unexpected error: Processing could not begin, you may need to refresh the tab or restart the service.")
        return Processed(p, [])
    if not produced_any:
        print("Unexpected error: draw_xyz_grid failed to return even a single processed image")
        return Processed(p, [])

    first = next(im for im in processed_result.images if im is not None)
    cell_w, cell_h = first.size
    processed_result.images = [im if im is not None else _blank(first.size) for im in processed_result.images]

    z_count = len(zs)
    for i in range(z_count):
        start_index = i * len(xs) * len(ys)
        end_index = start_index + len(xs) * len(ys)
        grid = images.image_grid(processed_result.images[start_index:end_index], rows=len(ys))
        if draw_legend:
            grid = images.draw_grid_annotations(grid, cell_w, cell_h, [list(t) for t in hor_texts], [list(t) for t in ver_texts], margin_size)
        processed_result.images.insert(i, grid)
        processed_result.all_prompts.insert(i, processed_result.all_prompts[start_index + i])
        processed_result.all_seeds.insert(i, processed_result.all_seeds[start_index + i])
        processed_result.infotexts.insert(i, processed_result.infotexts[start_index + i])

    z_grid = images.image_grid(processed_result.images[:z_count], rows=1)
    sub_w, sub_h = processed_result.images[0].size
    if draw_legend:
        z_grid = images.draw_grid_annotations(z_grid, sub_w, sub_h, [list(t) for t in title_texts], [[images.GridAnnotation()]])
    processed_result.images.insert(0, z_grid)
    processed_result.all_prompts.insert(0, processed_result.all_prompts[0])
    processed_result.all_seeds.insert(0, processed_result.all_seeds[0])
    processed_result.infotexts.insert(0, processed_result.infotexts[0])
    return processed_result


def _blank(size):
    from PIL import Image
    return Image.new("RGB", size)


# ---------------------------------------------------------------------------------------------- the script

class Script(scripts.Script):
    def title(self):
        return "X/Y/Z plot"

    def _axis_options(self, is_img2img):
        return [x for x in axis_options if type(x) == AxisOption or getattr(x, "is_img2img", None) == is_img2img]

    def ui(self, is_img2img):
        import gradio as gr
        from modules.ui_components import ToolButton

        self.current_axis_options = self._axis_options(is_img2img)
        labels = [x.label for x in self.current_axis_options]
        fill_values_symbol = "\U0001f4d2"

        with gr.Row():
            with gr.Column(scale=19):
                with gr.Row():
                    x_type = gr.Dropdown(label="X type", choices=labels, value=labels[1], type="index", elem_id=self.elem_id("x_type"))
                    x_values = gr.Textbox(label="X values", lines=1, elem_id=self.elem_id("x_values"))
                    x_values_dropdown = gr.Dropdown(label="X values", visible=False, multiselect=True, interactive=True)
                    fill_x_button = ToolButton(value=fill_values_symbol, elem_id="xyz_grid_fill_x_tool_button", visible=False)
                with gr.Row():
                    y_type = gr.Dropdown(label="Y type", choices=labels, value=labels[0], type="index", elem_id=self.elem_id("y_type"))
                    y_values = gr.Textbox(label="Y values", lines=1, elem_id=self.elem_id("y_values"))
                    y_values_dropdown = gr.Dropdown(label="Y values", visible=False, multiselect=True, interactive=True)
                    fill_y_button = ToolButton(value=fill_values_symbol, elem_id="xyz_grid_fill_y_tool_button", visible=False)
                with gr.Row():
                    z_type = gr.Dropdown(label="Z type", choices=labels, value=labels[0], type="index", elem_id=self.elem_id("z_type"))
                    z_values = gr.Textbox(label="Z values", lines=1, elem_id=self.elem_id("z_values"))
                    z_values_dropdown = gr.Dropdown(label="Z values", visible=False, multiselect=True, interactive=True)
                    fill_z_button = ToolButton(value=fill_values_symbol, elem_id="xyz_grid_fill_z_tool_button", visible=False)

        with gr.Row(variant="compact", elem_id="axis_options"):
            with gr.Column():
                draw_legend = gr.Checkbox(label="Draw legend", value=True, elem_id=self.elem_id("draw_legend"))
                no_fixed_seeds = gr.Checkbox(label="Keep -1 for seeds", value=False, elem_id=self.elem_id("no_fixed_seeds"))
                with gr.Row():
                    vary_seeds_x = gr.Checkbox(label="Vary seeds for X", value=False, min_width=80, elem_id=self.elem_id("vary_seeds_x"))
                    vary_seeds_y = gr.Checkbox(label="Vary seeds for Y", value=False, min_width=80, elem_id=self.elem_id("vary_seeds_y"))
                    vary_seeds_z = gr.Checkbox(label="Vary seeds for Z", value=False, min_width=80, elem_id=self.elem_id("vary_seeds_z"))
            with gr.Column():
                include_lone_images = gr.Checkbox(label="Include Sub Images", value=False, elem_id=self.elem_id("include_lone_images"))
                include_sub_grids = gr.Checkbox(label="Include Sub Grids", value=False, elem_id=self.elem_id("include_sub_grids"))
                csv_mode = gr.Checkbox(label="Use text inputs instead of dropdowns", value=False, elem_id=self.elem_id("csv_mode"))
            with gr.Column():
                margin_size = gr.Slider(label="Grid margins (px)", minimum=0, maximum=500, value=0, step=2, elem_id=self.elem_id("margin_size"))

        with gr.Row(variant="compact", elem_id="swap_axes"):
            swap_xy_axes_button = gr.Button(value="Swap X/Y axes", elem_id="xy_grid_swap_axes_button")
            swap_yz_axes_button = gr.Button(value="Swap Y/Z axes", elem_id="yz_grid_swap_axes_button")
            swap_xz_axes_button = gr.Button(value="Swap X/Z axes", elem_id="xz_grid_swap_axes_button")

        def swap_axes(axis1_type, axis1_values, axis1_values_dropdown, axis2_type, axis2_values, axis2_values_dropdown):
            return (self.current_axis_options[axis2_type].label, axis2_values, axis2_values_dropdown,
                    self.current_axis_options[axis1_type].label, axis1_values, axis1_values_dropdown)

        xy_swap_args = [x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown]
        swap_xy_axes_button.click(swap_axes, inputs=xy_swap_args, outputs=xy_swap_args)
        yz_swap_args = [y_type, y_values, y_values_dropdown, z_type, z_values, z_values_dropdown]
        swap_yz_axes_button.click(swap_axes, inputs=yz_swap_args, outputs=yz_swap_args)
        xz_swap_args = [x_type, x_values, x_values_dropdown, z_type, z_values, z_values_dropdown]
        swap_xz_axes_button.click(swap_axes, inputs=xz_swap_args, outputs=xz_swap_args)

        def fill(axis_type, csv_mode):
            axis = self.current_axis_options[axis_type]
            if axis.choices:
                if csv_mode:
                    return list_to_csv_string(axis.choices()), gr.update()
                return gr.update(), axis.choices()
            return gr.update(), gr.update()

        fill_x_button.click(fn=fill, inputs=[x_type, csv_mode], outputs=[x_values, x_values_dropdown])
        fill_y_button.click(fn=fill, inputs=[y_type, csv_mode], outputs=[y_values, y_values_dropdown])
        fill_z_button.click(fn=fill, inputs=[z_type, csv_mode], outputs=[z_values, z_values_dropdown])

        def select_axis(axis_type, axis_values, axis_values_dropdown, csv_mode):
            axis_type = axis_type or 0
            choices = self.current_axis_options[axis_type].choices
            has_choices = choices is not None
            if has_choices:
                choices = choices()
                if csv_mode:
                    if axis_values_dropdown:
                        axis_values = list_to_csv_string(list(filter(lambda x: x in choices, axis_values_dropdown)))
                        axis_values_dropdown = []
                else:
                    if axis_values:
                        axis_values_dropdown = list(filter(lambda x: x in choices, csv_string_to_list_strip(axis_values)))
                        axis_values = ""
            return (gr.update(visible=has_choices), gr.update(visible=not has_choices or csv_mode, value=axis_values),
                    gr.update(choices=choices if has_choices else None, visible=has_choices and not csv_mode, value=axis_values_dropdown))

        x_type.change(fn=select_axis, inputs=[x_type, x_values, x_values_dropdown, csv_mode], outputs=[fill_x_button, x_values, x_values_dropdown])
        y_type.change(fn=select_axis, inputs=[y_type, y_values, y_values_dropdown, csv_mode], outputs=[fill_y_button, y_values, y_values_dropdown])
        z_type.change(fn=select_axis, inputs=[z_type, z_values, z_values_dropdown, csv_mode], outputs=[fill_z_button, z_values, z_values_dropdown])

        def change_choice_mode(csv_mode, x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown, z_type, z_values, z_values_dropdown):
            _fill_x_button, _x_values, _x_values_dropdown = select_axis(x_type, x_values, x_values_dropdown, csv_mode)
            _fill_y_button, _y_values, _y_values_dropdown = select_axis(y_type, y_values, y_values_dropdown, csv_mode)
            _fill_z_button, _z_values, _z_values_dropdown = select_axis(z_type, z_values, z_values_dropdown, csv_mode)
            return (_fill_x_button, _x_values, _x_values_dropdown, _fill_y_button, _y_values, _y_values_dropdown,
                    _fill_z_button, _z_values, _z_values_dropdown)

        csv_mode.change(fn=change_choice_mode,
                        inputs=[csv_mode, x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown, z_type, z_values, z_values_dropdown],
                        outputs=[fill_x_button, x_values, x_values_dropdown, fill_y_button, y_values, y_values_dropdown, fill_z_button, z_values, z_values_dropdown])

        def get_dropdown_update_from_params(axis, params):
            val_key = f"{axis} Values"
            vals = params.get(val_key, "")
            valslist = csv_string_to_list_strip(vals)
            return gr.update(value=valslist)

        self.infotext_fields = (
            (x_type, "X Type"),
            (x_values, "X Values"),
            (x_values_dropdown, lambda params: get_dropdown_update_from_params("X", params)),
            (y_type, "Y Type"),
            (y_values, "Y Values"),
            (y_values_dropdown, lambda params: get_dropdown_update_from_params("Y", params)),
            (z_type, "Z Type"),
            (z_values, "Z Values"),
            (z_values_dropdown, lambda params: get_dropdown_update_from_params("Z", params)),
        )

        return [x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown, z_type, z_values, z_values_dropdown,
                draw_legend, include_lone_images, include_sub_grids, no_fixed_seeds, vary_seeds_x, vary_seeds_y, vary_seeds_z,
                margin_size, csv_mode]

    def _option(self, axis_type):
        """An axis from the dropdown index (UI) or its label (API/tests)."""
        options = getattr(self, "current_axis_options", None) or self._axis_options(self.is_img2img)
        if axis_type is None:
            return options[0]
        if isinstance(axis_type, str):
            for opt in options:
                if opt.label == axis_type:
                    return opt
            raise RuntimeError(f"X/Y/Z plot: unknown axis type {axis_type!r}")
        if not 0 <= int(axis_type) < len(options):
            raise RuntimeError(f"X/Y/Z plot: axis type index {axis_type} is out of range")
        return options[int(axis_type)]

    def run(self, p, x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown, z_type, z_values, z_values_dropdown,
            draw_legend, include_lone_images, include_sub_grids, no_fixed_seeds, vary_seeds_x, vary_seeds_y, vary_seeds_z,
            margin_size, csv_mode):
        x_type, y_type, z_type = x_type or 0, y_type or 0, z_type or 0

        if not no_fixed_seeds:
            processing.fix_seed(p)

        if not opts.return_grid:
            p.batch_size = 1

        def process_axis(opt, vals, vals_dropdown):
            valslist = expand_values(opt, vals, vals_dropdown, csv_mode)
            if opt.confirm:
                opt.confirm(p, valslist)
            return valslist

        x_opt = self._option(x_type)
        if x_opt.choices is not None and not csv_mode:
            x_values = list_to_csv_string(x_values_dropdown or [])
        xs = process_axis(x_opt, x_values, x_values_dropdown)

        y_opt = self._option(y_type)
        if y_opt.choices is not None and not csv_mode:
            y_values = list_to_csv_string(y_values_dropdown or [])
        ys = process_axis(y_opt, y_values, y_values_dropdown)

        z_opt = self._option(z_type)
        if z_opt.choices is not None and not csv_mode:
            z_values = list_to_csv_string(z_values_dropdown or [])
        zs = process_axis(z_opt, z_values, z_values_dropdown)

        for opt, vals in ((x_opt, xs), (y_opt, ys), (z_opt, zs)):
            if not vals:
                raise RuntimeError(f"X/Y/Z plot: no values for axis {opt.label}")

        Image_max_mp = opts.img_max_size_mp
        grid_mp = round(len(xs) * len(ys) * len(zs) * p.width * p.height / 1000000)
        if grid_mp >= Image_max_mp:
            raise RuntimeError(f"Error: Resulting grid would be too large ({grid_mp} MPixels) (max configured size is {Image_max_mp} MPixels)")

        xs = fix_axis_seeds(x_opt, xs)
        ys = fix_axis_seeds(y_opt, ys)
        zs = fix_axis_seeds(z_opt, zs)

        if x_opt.label == "Steps":
            total_steps = sum(xs) * len(ys) * len(zs)
        elif y_opt.label == "Steps":
            total_steps = sum(ys) * len(xs) * len(zs)
        elif z_opt.label == "Steps":
            total_steps = sum(zs) * len(xs) * len(ys)
        else:
            total_steps = p.steps * len(xs) * len(ys) * len(zs)
        if getattr(p, "enable_hr", False):
            if x_opt.label == "Hires steps":
                total_steps += sum(xs) * len(ys) * len(zs)
            elif y_opt.label == "Hires steps":
                total_steps += sum(ys) * len(xs) * len(zs)
            elif z_opt.label == "Hires steps":
                total_steps += sum(zs) * len(xs) * len(ys)
            elif getattr(p, "hr_second_pass_steps", 0):
                total_steps += p.hr_second_pass_steps * len(xs) * len(ys) * len(zs)
            else:
                total_steps *= 2
        total_steps *= p.n_iter

        image_cell_count = p.n_iter * p.batch_size
        cell_console_text = f"; {image_cell_count} images per cell" if image_cell_count > 1 else ""
        plural_s = "s" if len(zs) > 1 else ""
        print(f"X/Y/Z plot will create {len(xs) * len(ys) * len(zs) * image_cell_count} images on {len(zs)} "
              f"{len(xs)}x{len(ys)} grid{plural_s}{cell_console_text}. (Total steps to process: {total_steps})")
        shared.total_tqdm.updateTotal(total_steps)

        state.xyz_plot_x = AxisInfo(x_opt, xs)
        state.xyz_plot_y = AxisInfo(y_opt, ys)
        state.xyz_plot_z = AxisInfo(z_opt, zs)

        order = _axis_loop_order(x_opt, y_opt, z_opt)
        first_axes_processed, second_axes_processed = order[0], order[1]

        grid_infotext = [None] * (1 + len(zs))

        def cell(x, y, z, ix, iy, iz):
            if state.interrupted or state.stopping_generation:
                return Processed(p, [], p.seed, "")

            pc = copy(p)
            pc.styles = pc.styles[:]
            pc.override_settings = dict(pc.override_settings)
            pc.extra_generation_params = dict(pc.extra_generation_params)
            x_opt.apply(pc, x, xs)
            y_opt.apply(pc, y, ys)
            z_opt.apply(pc, z, zs)

            xdim = len(xs) if vary_seeds_x else 1
            ydim = len(ys) if vary_seeds_y else 1
            if vary_seeds_x:
                pc.seed += ix
            if vary_seeds_y:
                pc.seed += iy * xdim
            if vary_seeds_z:
                pc.seed += iz * xdim * ydim

            try:
                res = process_images(pc)
            except Exception as e:
                errors.display(e, "generating image for xyz plot")
                res = Processed(p, [], p.seed, "")

            # The grid's infotext: the first cell of each grid plus which axes and values made it.
            subgrid_index = 1 + iz
            if grid_infotext[subgrid_index] is None and ix == 0 and iy == 0 and res.images:
                pc.extra_generation_params = copy(pc.extra_generation_params)
                pc.extra_generation_params["Script"] = self.title()
                if x_opt.label != "Nothing":
                    pc.extra_generation_params["X Type"] = x_opt.label
                    pc.extra_generation_params["X Values"] = x_values
                    if x_opt.label in ("Seed", "Var. seed") and not no_fixed_seeds:
                        pc.extra_generation_params["Fixed X Values"] = ", ".join(str(x) for x in xs)
                if y_opt.label != "Nothing":
                    pc.extra_generation_params["Y Type"] = y_opt.label
                    pc.extra_generation_params["Y Values"] = y_values
                    if y_opt.label in ("Seed", "Var. seed") and not no_fixed_seeds:
                        pc.extra_generation_params["Fixed Y Values"] = ", ".join(str(y) for y in ys)
                grid_infotext[subgrid_index] = processing.create_infotext(pc, pc.all_prompts, pc.all_seeds, pc.all_subseeds)
            if grid_infotext[0] is None and ix == 0 and iy == 0 and iz == 0 and res.images:
                pc.extra_generation_params = copy(pc.extra_generation_params)
                if z_opt.label != "Nothing":
                    pc.extra_generation_params["Z Type"] = z_opt.label
                    pc.extra_generation_params["Z Values"] = z_values
                    if z_opt.label in ("Seed", "Var. seed") and not no_fixed_seeds:
                        pc.extra_generation_params["Fixed Z Values"] = ", ".join(str(z) for z in zs)
                grid_infotext[0] = processing.create_infotext(pc, pc.all_prompts, pc.all_seeds, pc.all_subseeds)
            return res

        with SharedSettingsStackHelper():
            processed = draw_xyz_grid(
                p, xs=xs, ys=ys, zs=zs,
                x_labels=[x_opt.format_value(p, x_opt, x) for x in xs],
                y_labels=[y_opt.format_value(p, y_opt, y) for y in ys],
                z_labels=[z_opt.format_value(p, z_opt, z) for z in zs],
                cell=cell, draw_legend=draw_legend, include_lone_images=include_lone_images,
                include_sub_grids=include_sub_grids, first_axes_processed=first_axes_processed,
                second_axes_processed=second_axes_processed, margin_size=margin_size,
            )

        if not processed.images:
            return processed

        z_count = len(zs)
        for i, text in enumerate(grid_infotext[:1 + z_count]):
            if text is not None and i < len(processed.infotexts):
                processed.infotexts[i] = text

        if not include_lone_images:
            processed.images = processed.images[:z_count + 1]
            processed.infotexts = processed.infotexts[:z_count + 1]
            processed.all_prompts = processed.all_prompts[:z_count + 1]
            processed.all_seeds = processed.all_seeds[:z_count + 1]

        if opts.grid_save:
            grid_count = z_count + 1 if z_count > 1 else 1
            for g in range(grid_count):
                adj_g = g - 1 if g > 0 else g
                images.save_image(processed.images[g], p.outpath_grids, "xyz_grid", info=processed.infotexts[g],
                                  extension=opts.grid_format, prompt=processed.all_prompts[adj_g],
                                  seed=processed.all_seeds[adj_g], grid=True, p=processed)
                if not include_sub_grids:
                    break

        if not include_sub_grids:
            # The sub-grids sit right after the overall grid; with a single Z value the overall grid is the sub-grid.
            for _ in range(z_count):
                del processed.images[1]
                del processed.infotexts[1]
                del processed.all_prompts[1]
                del processed.all_seeds[1]
        return processed


class AxisInfo:
    """What state.xyz_plot_x/y/z expose to other scripts while the plot runs."""

    def __init__(self, axis, values):
        self.axis = axis
        self.values = values
