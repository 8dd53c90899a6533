"""The img2img tab: modes img2img / Sketch / Inpaint / Inpaint sketch / Inpaint upload / Batch, resize, denoising and
the inpainting controls; it builds a StableDiffusionProcessingImg2Img (or a folder batch) and shows the result."""
from types import SimpleNamespace

import gradio as gr

from modules import img2img as engine, shared
from modules.processing_img2img import INPAINTING_FILL_NAMES, RESIZE_MODES
from modules.shared import opts
from webui import extension_ui_helpers, extra_networks_ui, generation_controls, job_runner, output_panel
from webui.image_input import ImageInput
from webui.toprow import Toprow

TABNAME = "img2img"
# One gr.Tab per mode, in A1111's order (the index is A1111's `img2img_selected_tab`).
MODE_TAB_IDS = ["img2img_img2img_tab", "img2img_img2img_sketch_tab", "img2img_inpaint_tab",
                "img2img_inpaint_sketch_tab", "img2img_inpaint_upload_tab", "img2img_batch_tab"]
MASK_MODES = ["Inpaint masked", "Inpaint not masked"]
INPAINT_AREAS = ["Whole picture", "Only masked"]
PNG_INFO_PROPS = ["Prompt", "Negative prompt", "Seed", "CFG scale", "Sampler", "Steps", "Model hash"]
# The image inputs, in the order the generate function receives them.
IMAGE_INPUT_NAMES = ["init_img", "sketch", "init_img_with_mask", "inpaint_color_sketch", "init_img_inpaint", "init_mask_inpaint"]


def mode_request(mode, images, mask_blur, mask_alpha, by_scale, scale_by, batch):
    """The request fields a mode gives: its init image and mask (inpainting modes only), the "Resize by" size,
    or the Batch tab's folder/upload settings."""
    if mode == engine.MODE_BATCH:
        return {"batch": {**batch, "to_scale": by_scale, "scale_by": scale_by}}
    image, mask = engine.image_and_mask(mode, **images, mask_blur=mask_blur, mask_alpha=mask_alpha)
    request = {"init_images": [image], "mask": mask if mode in engine.INPAINT_MODES else None}
    if by_scale:
        request["width"], request["height"] = engine.scaled_size(image, scale_by)
    return request


def _editor(label, elem_id, brush, image_mode="RGBA"):
    return gr.ImageEditor(label=label, elem_id=elem_id, type="pil", image_mode=image_mode, sources=["upload", "clipboard"],
                          brush=brush, layers=False, height=min(int(opts.img2img_editor_height), 720), format="png")


def create_mode_inputs():
    """The mode tabs and their image inputs; returns a namespace with the tabs, the inputs and the batch controls."""
    ns = SimpleNamespace(tabs=[])
    with gr.Tabs(elem_id="mode_img2img") as ns.mode_tabs:
        with gr.Tab("img2img", id=MODE_TAB_IDS[0], elem_id=MODE_TAB_IDS[0]) as tab:
            ns.init_img = ImageInput(label="Image for img2img", elem_id="img2img_image", type="pil", image_mode="RGBA",
                                   sources=["upload", "clipboard"], height=min(int(opts.img2img_editor_height), 720))
        ns.tabs.append(tab)
        with gr.Tab("Sketch", id=MODE_TAB_IDS[1], elem_id=MODE_TAB_IDS[1]) as tab:
            ns.sketch = _editor("Image for img2img", "img2img_sketch", gr.Brush(
                colors=[opts.img2img_sketch_default_brush_color, "#000000", "#cc3232", "#32cc70", "#3270cc"], color_mode="defaults"))
        ns.tabs.append(tab)
        with gr.Tab("Inpaint", id=MODE_TAB_IDS[2], elem_id=MODE_TAB_IDS[2]) as tab:
            ns.init_img_with_mask = _editor("Image for inpainting with mask", "img2maskimg", gr.Brush(
                colors=[opts.img2img_inpaint_mask_brush_color], color_mode="fixed"))
        ns.tabs.append(tab)
        with gr.Tab("Inpaint sketch", id=MODE_TAB_IDS[3], elem_id=MODE_TAB_IDS[3]) as tab:
            ns.inpaint_color_sketch = _editor("Color sketch inpainting", "inpaint_sketch", gr.Brush(
                colors=[opts.img2img_inpaint_sketch_default_brush_color, "#000000", "#cc3232", "#32cc70", "#3270cc"], color_mode="defaults"))
        ns.tabs.append(tab)
        with gr.Tab("Inpaint upload", id=MODE_TAB_IDS[4], elem_id=MODE_TAB_IDS[4]) as tab:
            ns.init_img_inpaint = ImageInput(label="Image for img2img", elem_id="img_inpaint_base", type="pil", image_mode="RGBA", sources=["upload", "clipboard"])
            ns.init_mask_inpaint = ImageInput(label="Mask", elem_id="img_inpaint_mask", type="pil", image_mode="RGBA", sources=["upload", "clipboard"])
        ns.tabs.append(tab)
        with gr.Tab("Batch", id=MODE_TAB_IDS[5], elem_id=MODE_TAB_IDS[5]) as tab:
            ns.batch = create_batch_inputs()
        ns.tabs.append(tab)
    ns.image_inputs = [getattr(ns, name) for name in IMAGE_INPUT_NAMES]
    return ns


def create_batch_inputs():
    ns = SimpleNamespace()
    ns.source = gr.State("upload")
    hide_dirs = shared.cmd_opts.hide_ui_dir_config
    with gr.Tabs(elem_id="img2img_batch_source"):
        with gr.Tab("Upload", id="img2img_batch_upload_tab", elem_id="img2img_batch_upload_tab") as upload_tab:
            ns.files = gr.Files(label="Files", elem_id="img2img_batch_upload", file_count="multiple", file_types=["image"])
        with gr.Tab("From directory", id="img2img_batch_from_dir_tab", elem_id="img2img_batch_from_dir_tab", visible=not hide_dirs) as dir_tab:
            gr.HTML("<p>Process images in a directory on the same machine where the server is running. Use an empty output "
                    "directory to save pictures normally instead of writing to the output directory. Add an inpaint batch mask "
                    "directory to enable inpaint batch processing (a mask with the image's name, or the only file there).</p>")
            ns.input_dir = gr.Textbox(label="Input directory", elem_id="img2img_batch_input_dir")
            ns.output_dir = gr.Textbox(label="Output directory", elem_id="img2img_batch_output_dir")
            ns.inpaint_mask_dir = gr.Textbox(label="Inpaint batch mask directory (required for inpaint batch processing only)", elem_id="img2img_batch_inpaint_mask_dir")
    with gr.Accordion("PNG info", open=False):
        ns.use_png_info = gr.Checkbox(label="Append png info to prompts", elem_id="img2img_batch_use_png_info")
        ns.png_info_dir = gr.Textbox(label="PNG info directory", placeholder="Leave empty to use input directory", elem_id="img2img_batch_png_info_dir")
        ns.png_info_props = gr.CheckboxGroup(PNG_INFO_PROPS, label="Parameters to take from png info", elem_id="img2img_batch_png_info_props")
    upload_tab.select(fn=lambda: "upload", outputs=[ns.source], queue=False)
    dir_tab.select(fn=lambda: "dir", outputs=[ns.source], queue=False)
    ns.inputs = [ns.source, ns.files, ns.input_dir, ns.output_dir, ns.inpaint_mask_dir, ns.use_png_info, ns.png_info_props, ns.png_info_dir]
    ns.names = ["source", "files", "input_dir", "output_dir", "inpaint_mask_dir", "use_png_info", "png_info_props", "png_info_dir"]
    return ns


def create_resize_controls():
    ns = SimpleNamespace()
    ns.resize_mode = gr.Radio(label="Resize mode", elem_id="resize_mode", choices=RESIZE_MODES, type="index", value=RESIZE_MODES[0])
    ns.by_scale = gr.State(False)
    w, h = generation_controls.default_size()
    with gr.Tabs(elem_id="img2img_tabs_resize"):
        with gr.Tab("Resize to", id="img2img_tab_resize_to", elem_id="img2img_tab_resize_to") as to_tab:
            with gr.Row():
                with gr.Column(scale=4):
                    ns.width = gr.Slider(minimum=64, maximum=2048, step=8, label="Width", value=w, elem_id="img2img_width")
                    ns.height = gr.Slider(minimum=64, maximum=2048, step=8, label="Height", value=h, elem_id="img2img_height")
                with gr.Column(scale=0, min_width=48):
                    ns.swap = gr.Button("⇅", elem_id="img2img_res_switch_btn", size="sm", min_width=40)
                    ns.detect = gr.Button("📐", elem_id="img2img_detect_image_size_btn", size="sm", min_width=40)
        with gr.Tab("Resize by", id="img2img_tab_resize_by", elem_id="img2img_tab_resize_by") as by_tab:
            ns.scale_by = gr.Slider(minimum=0.05, maximum=4.0, step=0.05, label="Scale", value=1.0, elem_id="img2img_scale")
            ns.scale_label = gr.HTML("", elem_id="img2img_scale_resolution_preview")
    to_tab.select(fn=lambda: False, outputs=[ns.by_scale], queue=False)
    by_tab.select(fn=lambda: True, outputs=[ns.by_scale], queue=False)
    ns.swap.click(fn=lambda a, b: (b, a), inputs=[ns.width, ns.height], outputs=[ns.width, ns.height], queue=False)
    return ns


def create_inpaint_controls():
    ns = SimpleNamespace()
    with gr.Group(visible=False, elem_id="inpaint_controls") as ns.group:
        with gr.Row():
            ns.mask_blur = gr.Slider(label="Mask blur", minimum=0, maximum=64, step=1, value=4, elem_id="img2img_mask_blur")
            ns.mask_alpha = gr.Slider(label="Mask transparency", minimum=0, maximum=100, step=1, value=0, visible=False, elem_id="img2img_mask_alpha")
        ns.inpainting_mask_invert = gr.Radio(label="Mask mode", choices=MASK_MODES, value=MASK_MODES[0], type="index", elem_id="img2img_mask_mode")
        ns.inpainting_fill = gr.Radio(label="Masked content", choices=INPAINTING_FILL_NAMES, value=INPAINTING_FILL_NAMES[1], type="index", elem_id="img2img_inpainting_fill")
        with gr.Row():
            ns.inpaint_full_res = gr.Radio(label="Inpaint area", choices=INPAINT_AREAS, type="index", value=INPAINT_AREAS[0], elem_id="img2img_inpaint_full_res")
            ns.inpaint_full_res_padding = gr.Slider(label="Only masked padding, pixels", minimum=0, maximum=256, step=4, value=32, elem_id="img2img_inpaint_full_res_padding")
    return ns


def mode_updates(mode: int):
    """(mode, inpaint controls' visibility, mask transparency's visibility) for a mode index."""
    return mode, gr.update(visible=mode in engine.INPAINT_MODES), gr.update(visible=mode == engine.MODE_INPAINT_SKETCH)


def _current_image(mode, *images):
    try:
        values = dict(zip(IMAGE_INPUT_NAMES, images))
        image, _ = engine.image_and_mask(mode, **values) if mode != engine.MODE_BATCH else (None, None)
        return image
    except (ValueError, TypeError):
        return None


def create_tab(ctx):
    # (extension-compat) Build the tab inside its script runner's scope, so scripts' before/after_component hooks
    # fire for every component of the tab (Config Presets finds the fields it sets that way).
    from modules import scripts
    from webui import script_runner_ui
    with script_runner_ui.tab_scope(scripts.scripts_img2img):
        _create_tab(ctx)


def _create_tab(ctx):
    toprow = Toprow(is_img2img=True, is_compact=shared.opts.compact_prompt_box)
    mode = gr.State(0)
    with extra_networks_ui.beside_generation(TABNAME, ctx):
        with gr.Row(elem_id=f"{TABNAME}_settings_and_output"):
            with gr.Column(scale=1, elem_id=f"{TABNAME}_settings"):
                toprow.create_inline_toprow_prompts()
                modes = create_mode_inputs()
                resize = create_resize_controls()
                controls = generation_controls.create_sampling_controls(TABNAME, ctx)
                with gr.Row():
                    batch_count = gr.Slider(minimum=1, maximum=100, step=1, label="Batch count", value=1, elem_id=f"{TABNAME}_batch_count")
                    batch_size = gr.Slider(minimum=1, maximum=8, step=1, label="Batch size", value=1, elem_id=f"{TABNAME}_batch_size")
                cfg_scale = gr.Slider(minimum=1.0, maximum=30.0, step=0.5, label="CFG Scale", value=7.0, elem_id=f"{TABNAME}_cfg_scale")
                denoising_strength = gr.Slider(minimum=0.0, maximum=1.0, step=0.01, label="Denoising strength", value=0.75, elem_id=f"{TABNAME}_denoising_strength")
                inpaint = create_inpaint_controls()
                seed = generation_controls.create_seed_controls(TABNAME)
                script_inputs = generation_controls.create_script_controls(TABNAME, is_img2img=True)
            with gr.Column(scale=1, elem_id=f"{TABNAME}_results"):
                toprow.create_inline_toprow_image()
                out = output_panel.OutputPanel(TABNAME)

    toprow.bind_token_counters(controls.steps)
    mode_outputs = [mode, inpaint.group, inpaint.mask_alpha]
    for index, tab in enumerate(modes.tabs):
        tab.select(fn=lambda i=index: mode_updates(i), inputs=[], outputs=mode_outputs, queue=False)

    form = {
        "prompt": toprow.prompt, "negative_prompt": toprow.negative_prompt, "styles": toprow.ui_styles.dropdown,
        "sampler_name": controls.sampler, "scheduler": controls.scheduler, "steps": controls.steps,
        "cfg_scale": cfg_scale, "width": resize.width, "height": resize.height,
        "n_iter": batch_count, "batch_size": batch_size,
        "seed": seed.seed, "subseed": seed.subseed, "subseed_strength": seed.subseed_strength,
        "seed_resize_from_w": seed.seed_resize_from_w, "seed_resize_from_h": seed.seed_resize_from_h,
        "denoising_strength": denoising_strength, "resize_mode": resize.resize_mode,
        "mask_blur": inpaint.mask_blur, "inpainting_mask_invert": inpaint.inpainting_mask_invert,
        "inpainting_fill": inpaint.inpainting_fill, "inpaint_full_res": inpaint.inpaint_full_res,
        "inpaint_full_res_padding": inpaint.inpaint_full_res_padding,
    }
    names = list(form)
    batch_names = modes.batch.names
    extra_inputs = [seed.extras, mode, *modes.image_inputs, inpaint.mask_alpha, resize.by_scale, resize.scale_by, *modes.batch.inputs]

    def generate(gradio_request: gr.Request, *values):
        request = dict(zip(names, values[:len(names)]))
        rest = list(values[len(names):len(names) + len(extra_inputs)])
        request["script_args"] = list(values[len(names) + len(extra_inputs):])
        use_extras, mode_index = rest[0], int(rest[1] or 0)
        images = dict(zip(IMAGE_INPUT_NAMES, rest[2:2 + len(IMAGE_INPUT_NAMES)]))
        mask_alpha, by_scale, scale_by = rest[2 + len(IMAGE_INPUT_NAMES):5 + len(IMAGE_INPUT_NAMES)]
        batch = dict(zip(batch_names, rest[5 + len(IMAGE_INPUT_NAMES):]))
        request = generation_controls.form_request(request, use_extras)
        request["inpaint_full_res"] = bool(request["inpaint_full_res"])
        try:
            request.update(mode_request(mode_index, images, request["mask_blur"], mask_alpha, bool(by_scale), float(scale_by), batch))
        except (ValueError, TypeError) as e:
            yield out.result_update(None, e)
            return
        yield from out.follow(job_runner.run_job(TABNAME, "img2img", request, gradio_request=gradio_request))

    inputs = [form[n] for n in names] + extra_inputs + script_inputs
    # Every press joins the one job queue at once (no Gradio-side limit), so it shows its place in line.
    toprow.submit.click(fn=generate, inputs=inputs, outputs=out.outputs, concurrency_limit=None, show_progress="hidden")
    toprow.prompt.submit(fn=generate, inputs=inputs, outputs=out.outputs, concurrency_limit=None, show_progress="hidden")

    def detect_size(mode_index, *images):
        image = _current_image(int(mode_index or 0), *images)
        return (gr.update(), gr.update()) if image is None else (image.width, image.height)

    resize.detect.click(fn=detect_size, inputs=[mode, *modes.image_inputs], outputs=[resize.width, resize.height], queue=False)

    def scale_label(mode_index, scale_by, *images):
        image = _current_image(int(mode_index or 0), *images)
        return "" if image is None else extension_ui_helpers.resize_from_to_html(image.width, image.height, scale_by)

    resize.scale_by.release(fn=scale_label, inputs=[mode, resize.scale_by, *modes.image_inputs], outputs=[resize.scale_label], queue=False)

    generation_controls.bind_paste(toprow, out, form, seed, None, TABNAME)
    seed.bind_reuse(out.generation_info, out.selected_index)

    def select_mode(index: int):
        """Updates that switch to mode `index`, for mode_select_outputs (the send-to buttons use it)."""
        return (gr.Tabs(selected=MODE_TAB_IDS[index]), *mode_updates(index))

    ctx.register_tab(TABNAME, toprow=toprow, form=form, output=out, seed=seed, hires=None, mode=mode,
                     mode_tabs=modes.mode_tabs, init_img=modes.init_img, sketch=modes.sketch,
                     inpaint=modes.init_img_with_mask, inpaint_sketch=modes.inpaint_color_sketch,
                     inpaint_upload=modes.init_img_inpaint, select_mode=select_mode,
                     mode_select_outputs=[modes.mode_tabs, *mode_outputs])
