"""The txt2img tab: its controls become a txt2img request (A1111's field names), which goes to the job queue like
an API request; the tab shows the job's progress and result."""
import gradio as gr

from modules import shared
from webui import extra_networks_ui, generation_controls, job_runner, output_panel, txt2img_upscale
from webui.toprow import Toprow


def create_tab(ctx):
    # (extension-compat) Build the tab inside its script runner's scope, so scripts' before/after_component hooks
    # fire for every component of the tab (Config Presets finds the fields it sets that way).
    from modules import scripts
    from webui import script_runner_ui
    with script_runner_ui.tab_scope(scripts.scripts_txt2img):
        _create_tab(ctx)


def _create_tab(ctx):
    tabname = "txt2img"
    toprow = Toprow(is_img2img=False, is_compact=shared.opts.compact_prompt_box)
    with extra_networks_ui.beside_generation(tabname, ctx):
        with gr.Row(elem_id=f"{tabname}_settings_and_output"):
            with gr.Column(scale=1, elem_id=f"{tabname}_settings"):
                toprow.create_inline_toprow_prompts()
                controls = generation_controls.create_sampling_controls(tabname, ctx)
                hires = generation_controls.create_hires_controls(tabname, ctx)
                dims = generation_controls.create_dimension_controls(tabname, ctx)
                seed = generation_controls.create_seed_controls(tabname)
                script_inputs = generation_controls.create_script_controls(tabname, is_img2img=False)
            with gr.Column(scale=1, elem_id=f"{tabname}_results"):
                toprow.create_inline_toprow_image()
                out = output_panel.OutputPanel(tabname)

    toprow.bind_token_counters(controls.steps)

    form = {
        "prompt": toprow.prompt, "negative_prompt": toprow.negative_prompt, "styles": toprow.ui_styles.dropdown,
        "sampler_name": controls.sampler, "scheduler": controls.scheduler, "steps": controls.steps,
        "cfg_scale": dims.cfg_scale, "width": dims.width, "height": dims.height,
        "n_iter": dims.batch_count, "batch_size": dims.batch_size,
        "seed": seed.seed, "subseed": seed.subseed, "subseed_strength": seed.subseed_strength,
        "seed_resize_from_w": seed.seed_resize_from_w, "seed_resize_from_h": seed.seed_resize_from_h,
        "enable_hr": hires.enable, "hr_upscaler": hires.upscaler, "hr_second_pass_steps": hires.steps,
        "denoising_strength": hires.denoising_strength, "hr_scale": hires.scale, "hr_resize_x": hires.resize_x,
        "hr_resize_y": hires.resize_y, "hr_checkpoint_name": hires.checkpoint, "hr_sampler_name": hires.sampler, "hr_scheduler": hires.scheduler,
        "hr_prompt": hires.prompt, "hr_negative_prompt": hires.negative_prompt,
    }
    names = list(form)
    extras_checkbox = seed.extras

    def form_values_request(values):
        request = dict(zip(names, values[:len(names)]))
        use_extras = values[len(names)]
        request["script_args"] = list(values[len(names) + 1:])
        return generation_controls.form_request(request, use_extras)

    def generate(gradio_request: gr.Request, *values):
        request = form_values_request(values)
        yield from out.follow(job_runner.run_job(tabname, "txt2img", request, gradio_request=gradio_request))

    def upscale(gradio_request: gr.Request, gallery_value, selected_index, generation_info, *values):
        try:
            request, index = txt2img_upscale.upscale_request(form_values_request(values), gallery_value,
                                                             selected_index, generation_info)
        except ValueError as e:
            yield out.result_update(None, e)
            return
        yield from out.follow(job_runner.run_job(tabname, "txt2img", request, gradio_request=gradio_request),
                              lambda result: txt2img_upscale.shown_in_place(gallery_value, generation_info, index, result))

    inputs = [form[n] for n in names] + [extras_checkbox] + script_inputs
    # Every press joins the one job queue at once (no Gradio-side limit), so it shows its place in line.
    toprow.submit.click(fn=generate, inputs=inputs, outputs=out.outputs, concurrency_limit=None, show_progress="hidden")
    toprow.prompt.submit(fn=generate, inputs=inputs, outputs=out.outputs, concurrency_limit=None, show_progress="hidden")
    out.button_upscale.click(fn=upscale, inputs=[out.gallery, out.selected_index, out.generation_info, *inputs],
                             outputs=out.outputs, concurrency_limit=None, show_progress="hidden")

    generation_controls.bind_paste(toprow, out, form, seed, hires, tabname)
    seed.bind_reuse(out.generation_info, out.selected_index)
    ctx.register_tab(tabname, toprow=toprow, form=form, output=out, seed=seed, hires=hires)
