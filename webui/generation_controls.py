"""Controls shared by txt2img and img2img: sampler, hires fix, size/batch/CFG, seed, scripts, and infotext paste."""
import json
from types import SimpleNamespace

import gradio as gr

from modules import scripts, shared
from modules.shared import opts
from webui import model_size, script_runner_ui


def sampler_names(for_img2img=False):
    from modules import sd_samplers
    return sd_samplers.visible_sampler_names()


def scheduler_labels():
    from modules import sd_schedulers
    return [x.label for x in sd_schedulers.schedulers]


def hires_checkpoint_names():
    from modules import sd_models
    return sd_models.checkpoint_tiles(use_short=True)


def hires_upscaler_names():
    from modules.processing_txt2img import hires_upscaler_names as names
    return names()


def default_size():
    """The native size of the loaded (or selected) checkpoint: its family's (SD1 512, SDXL 1024, ...) or the file's
    own `modelspec.resolution` (the demo model declares 64x64)."""
    return model_size.current_native_size()


def create_sampling_controls(tabname, ctx):
    names = sampler_names()
    default_sampler = "Euler a" if "Euler a" in names and demo_model_selected() else (names[0] if names else None)
    with gr.Row(elem_id=f"{tabname}_sampling_row"):
        # A name pasted from an infotext that this install lacks is shown as written (A1111) and Generate refuses it
        # by name; without allow_custom_value Gradio refused the whole Generate with a bare "Error".
        sampler = gr.Dropdown(label="Sampling method", elem_id=f"{tabname}_sampling", choices=names, value=default_sampler, allow_custom_value=True)
        scheduler = gr.Dropdown(label="Schedule type", elem_id=f"{tabname}_scheduler", choices=scheduler_labels(), value="Automatic", allow_custom_value=True)
    steps = gr.Slider(minimum=1, maximum=150, step=1, label="Sampling steps", value=20, elem_id=f"{tabname}_steps")
    return SimpleNamespace(sampler=sampler, scheduler=scheduler, steps=steps)


def demo_model_selected():
    from modules import sd_models
    info = sd_models.select_checkpoint()
    return info is not None and sd_models.is_builtin_demo(info.filename)


def create_hires_controls(tabname, ctx):
    with gr.Accordion("Hires. fix", open=False, elem_id=f"{tabname}_hr") as accordion:
        enable = gr.Checkbox(label="Hires. fix", value=False, elem_id=f"{tabname}_enable_hr")
        with gr.Row():
            # (allow_custom_value: a pasted upscaler this install lacks, as the sampler above)
            upscaler = gr.Dropdown(label="Upscaler", elem_id=f"{tabname}_hr_upscaler", choices=hires_upscaler_names(), value="Latent", allow_custom_value=True)
            steps = gr.Slider(minimum=0, maximum=150, step=1, label="Hires steps", value=0, elem_id=f"{tabname}_hires_steps")
            denoising_strength = gr.Slider(minimum=0.0, maximum=1.0, step=0.01, label="Denoising strength", value=0.7, elem_id=f"{tabname}_denoising_strength")
        with gr.Row():
            scale = gr.Slider(minimum=1.0, maximum=4.0, step=0.05, label="Upscale by", value=2.0, elem_id=f"{tabname}_hr_scale")
            resize_x = gr.Slider(minimum=0, maximum=2048, step=8, label="Resize width to", value=0, elem_id=f"{tabname}_hr_resize_x")
            resize_y = gr.Slider(minimum=0, maximum=2048, step=8, label="Resize height to", value=0, elem_id=f"{tabname}_hr_resize_y")
        with gr.Row(visible=opts.hires_fix_show_sampler):
            # short titles, as the infotext's "Hires checkpoint" names them; any name the request can resolve is taken
            checkpoint = gr.Dropdown(label="Hires checkpoint", elem_id=f"{tabname}_hr_checkpoint", allow_custom_value=True,
                                     choices=["Use same checkpoint"] + hires_checkpoint_names(), value="Use same checkpoint")
            sampler = gr.Dropdown(label="Hires sampling method", elem_id=f"{tabname}_hr_sampler", choices=["Use same sampler"] + sampler_names(), value="Use same sampler", allow_custom_value=True)
            scheduler = gr.Dropdown(label="Hires schedule type", elem_id=f"{tabname}_hr_scheduler", choices=["Use same scheduler"] + scheduler_labels(), value="Use same scheduler", allow_custom_value=True)
        # value="": a Textbox built without one sends None (Gradio 6), and the engine takes only "" as "same as the prompt"
        with gr.Row(visible=opts.hires_fix_show_prompts):
            prompt = gr.Textbox(label="Hires prompt", elem_id=f"{tabname}_hires_prompt", lines=3, value="")
            negative_prompt = gr.Textbox(label="Hires negative prompt", elem_id=f"{tabname}_hires_neg_prompt", lines=3, value="")
    return SimpleNamespace(accordion=accordion, enable=enable, upscaler=upscaler, steps=steps, denoising_strength=denoising_strength, scale=scale,
                           resize_x=resize_x, resize_y=resize_y, checkpoint=checkpoint, sampler=sampler, scheduler=scheduler, prompt=prompt,
                           negative_prompt=negative_prompt)


def create_dimension_controls(tabname, ctx):
    w, h = default_size()
    with gr.Row():
        with gr.Column(scale=4):
            width = gr.Slider(minimum=64, maximum=2048, step=8, label="Width", value=w, elem_id=f"{tabname}_width")
            height = gr.Slider(minimum=64, maximum=2048, step=8, label="Height", value=h, elem_id=f"{tabname}_height")
        swap = gr.Button("⇅", elem_id=f"{tabname}_res_switch_btn", size="sm", min_width=40, scale=0)
        with gr.Column(scale=2):
            batch_count = gr.Slider(minimum=1, maximum=100, step=1, label="Batch count", value=1, elem_id=f"{tabname}_batch_count")
            batch_size = gr.Slider(minimum=1, maximum=8, step=1, label="Batch size", value=1, elem_id=f"{tabname}_batch_size")
    cfg_scale = gr.Slider(minimum=1.0, maximum=30.0, step=0.5, label="CFG Scale", value=7.0, elem_id=f"{tabname}_cfg_scale")
    swap.click(fn=lambda a, b: (b, a), inputs=[width, height], outputs=[width, height], queue=False)
    return SimpleNamespace(width=width, height=height, batch_count=batch_count, batch_size=batch_size, cfg_scale=cfg_scale)


class SeedControls:
    def __init__(self, tabname):
        with gr.Row(elem_id=f"{tabname}_seed_row"):
            self.seed = gr.Number(label="Seed", value=-1, precision=0, elem_id=f"{tabname}_seed", scale=4)
            self.random_seed = gr.Button("🎲️", elem_id=f"{tabname}_random_seed", size="sm", min_width=40, scale=0)
            self.reuse_seed = gr.Button("♻️", elem_id=f"{tabname}_reuse_seed", size="sm", min_width=40, scale=0)
            self.extras = gr.Checkbox(label="Extra", value=False, elem_id=f"{tabname}_subseed_show", scale=1)
        with gr.Group(visible=False, elem_id=f"{tabname}_seed_extras") as self.extras_group:
            with gr.Row():
                self.subseed = gr.Number(label="Variation seed", value=-1, precision=0, elem_id=f"{tabname}_subseed", scale=4)
                self.random_subseed = gr.Button("🎲️", elem_id=f"{tabname}_random_subseed", size="sm", min_width=40, scale=0)
                self.reuse_subseed = gr.Button("♻️", elem_id=f"{tabname}_reuse_subseed", size="sm", min_width=40, scale=0)
                self.subseed_strength = gr.Slider(label="Variation strength", value=0.0, minimum=0, maximum=1, step=0.01, elem_id=f"{tabname}_subseed_strength", scale=4)
            with gr.Row():
                self.seed_resize_from_w = gr.Slider(minimum=0, maximum=2048, step=8, label="Resize seed from width", value=0, elem_id=f"{tabname}_seed_resize_from_w")
                self.seed_resize_from_h = gr.Slider(minimum=0, maximum=2048, step=8, label="Resize seed from height", value=0, elem_id=f"{tabname}_seed_resize_from_h")
        self.random_seed.click(fn=lambda: -1, inputs=[], outputs=[self.seed], queue=False)
        self.random_subseed.click(fn=lambda: -1, inputs=[], outputs=[self.subseed], queue=False)
        self.extras.change(fn=lambda v: gr.update(visible=v), inputs=[self.extras], outputs=[self.extras_group], queue=False)

    def bind_reuse(self, generation_info, selected_index):
        """♻️ takes the seed of the gallery image the user selected (A1111), from the job's generation info."""
        self.reuse_seed.click(fn=lambda j, i: reused_seed(j, i, "seed"), inputs=[generation_info, selected_index], outputs=[self.seed], queue=False)
        self.reuse_subseed.click(fn=lambda j, i: reused_seed(j, i, "subseed"), inputs=[generation_info, selected_index], outputs=[self.subseed], queue=False)


def reused_seed(generation_info: str, selected_index, which: str) -> int:
    """A1111's copy_seed: the seed (or variation seed) of gallery image `selected_index`; the first image's when
    none or the grid is selected; -1 without a result, and for the variation seed when the job used none."""
    try:
        info = json.loads(generation_info or "{}")
        index = (selected_index if selected_index is not None else -1) - int(info.get("index_of_first_image", 0))
        if which == "subseed" and not float(info.get("subseed_strength") or 0) > 0:
            return -1
        seeds = info.get("all_subseeds" if which == "subseed" else "all_seeds") or [-1]
        return int(seeds[index if 0 <= index < len(seeds) else 0])
    except (ValueError, TypeError, AttributeError):
        return -1


def create_seed_controls(tabname):
    return SeedControls(tabname)


def create_script_controls(tabname, is_img2img):
    """The Script dropdown and always-on scripts' controls; returns their components in script_args order."""
    runner = scripts.scripts_img2img if is_img2img else scripts.scripts_txt2img
    if runner is None:
        return []
    try:
        return list(script_runner_ui.create_script_ui(runner, is_img2img=is_img2img) or [])
    except Exception:
        from modules import errors
        errors.report(f"Error building the scripts section of {tabname}", exc_info=True)
        return []


def form_request(request: dict, use_seed_extras: bool) -> dict:
    """The form's values as a request: the hidden seed extras apply only when "Extra" is ticked. The engine
    (modules.processing_request) casts the numbers and resolves the names."""
    if not use_seed_extras:
        request["subseed_strength"] = 0.0
        request["seed_resize_from_w"] = 0
        request["seed_resize_from_h"] = 0
    return request


def bind_paste(toprow, out, form, seed, hires, tabname):
    """↙️: infotext in the prompt box (or the last generation's params.txt) fills the form, as A1111."""
    from webui import infotext_apply
    targets = infotext_apply.paste_targets(form, seed, hires)
    runner = scripts.scripts_img2img if tabname == "img2img" else scripts.scripts_txt2img
    components = [c for _, c in targets] + infotext_apply.script_components(runner)

    def paste(prompt_text):
        return infotext_apply.apply_infotext(prompt_text, targets, runner)

    toprow.paste.click(fn=paste, inputs=[toprow.prompt], outputs=components, queue=False)
