"""The txt2img tab: it builds a StableDiffusionProcessingTxt2Img from the controls and shows the result."""
import json

import gradio as gr

from modules import processing, shared
from modules.shared import opts
from webui import extra_networks_ui, generation_controls, job_runner, output_panel
from webui.toprow import Toprow


def txt2img(request: dict, script_args: list):
    """Engine call for one Generate press; returns a Processed. `request` holds the form's values by field name."""
    from modules import initialize, scripts as scripts_module
    initialize.wait_for_model()  # a Generate pressed while the model loads waits for it
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=shared.sd_model,
        outpath_samples=shared.data_relative(opts.outdir_samples or opts.outdir_txt2img_samples),
        outpath_grids=shared.data_relative(opts.outdir_grids or opts.outdir_txt2img_grids),
        **request,
    )
    runner = getattr(scripts_module, "scripts_txt2img", None)
    if runner is not None:
        p.scripts = runner
        p.script_args = list(script_args)
    processed = None
    if runner is not None and script_args:
        processed = runner.run(p, *script_args)
    if processed is None:
        processed = processing.process_images(p)
    p.close()
    return processed


def create_tab(ctx):
    # (extension-compat) Build the tab inside its script runner's scope, so scripts' before/after_component hooks
    # fire for every component of the tab (Config Presets finds the fields it sets that way).
    from modules import scripts
    from webui import script_runner_ui
    with script_runner_ui.tab_scope(scripts.scripts_txt2img):
        _create_tab(ctx)


def _create_tab(ctx):
    tabname = "txt2img"
    toprow = Toprow(tabname)
    with extra_networks_ui.beside_generation(tabname, ctx):
        with gr.Row(elem_id=f"{tabname}_settings_and_output"):
            with gr.Column(scale=1, elem_id=f"{tabname}_settings"):
                controls = generation_controls.create_sampling_controls(tabname, ctx)
                hires = generation_controls.create_hires_controls(tabname, ctx)
                dims = generation_controls.create_dimension_controls(tabname, ctx)
                seed = generation_controls.create_seed_controls(tabname)
                script_inputs = generation_controls.create_script_controls(tabname, is_img2img=False)
            with gr.Column(scale=1, elem_id=f"{tabname}_results"):
                out = output_panel.OutputPanel(tabname)

    toprow.bind_token_counters(controls.steps)

    form = {
        "prompt": toprow.prompt, "negative_prompt": toprow.negative_prompt, "styles": toprow.styles,
        "sampler_name": controls.sampler, "scheduler": controls.scheduler, "steps": controls.steps,
        "cfg_scale": dims.cfg_scale, "width": dims.width, "height": dims.height,
        "n_iter": dims.batch_count, "batch_size": dims.batch_size,
        "seed": seed.seed, "subseed": seed.subseed, "subseed_strength": seed.subseed_strength,
        "seed_resize_from_w": seed.seed_resize_from_w, "seed_resize_from_h": seed.seed_resize_from_h,
        "enable_hr": hires.enable, "hr_upscaler": hires.upscaler, "hr_second_pass_steps": hires.steps,
        "denoising_strength": hires.denoising_strength, "hr_scale": hires.scale, "hr_resize_x": hires.resize_x,
        "hr_resize_y": hires.resize_y, "hr_sampler_name": hires.sampler, "hr_scheduler": hires.scheduler,
        "hr_prompt": hires.prompt, "hr_negative_prompt": hires.negative_prompt,
    }
    names = list(form)
    extras_checkbox = seed.extras

    def generate(*values):
        request = dict(zip(names, values[:len(names)]))
        use_extras = values[len(names)]
        script_args = list(values[len(names) + 1:])
        request = generation_controls.normalize_request(request, use_extras)
        for kind, a, b in job_runner.run_job("txt2img", txt2img, request, script_args, preview_fn=_preview):
            if kind == "progress":
                yield out.progress_update(a, b)
            else:
                yield out.result_update(a, b)

    inputs = [form[n] for n in names] + [extras_checkbox] + script_inputs
    toprow.submit.click(fn=generate, inputs=inputs, outputs=out.outputs, concurrency_limit=1, show_progress="hidden")
    toprow.prompt.submit(fn=generate, inputs=inputs, outputs=out.outputs, concurrency_limit=1, show_progress="hidden")

    generation_controls.bind_paste(toprow, out, form, seed, hires, tabname)
    seed.bind_reuse(out.generation_info)
    ctx.register_tab(tabname, toprow=toprow, form=form, output=out, seed=seed, hires=hires)


def _preview():
    from modules import live_preview
    return live_preview.current_preview()


def generation_info_json(processed) -> str:
    return processed.js() if processed is not None else json.dumps({})
