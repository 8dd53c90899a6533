"""Extras tab: upscale (and run other postprocessing scripts on) one image, uploaded files or a folder.

The postprocessing scripts' controls (Upscale, and those of extensions) are built here in the runner's order;
modules.postprocessing.run_postprocessing does the work, as an "extras" job of the one queue. Registers
ctx.tabs["extras"] = {image} so other tabs can send an image here.
"""
import html

import gradio as gr

from modules import face_restoration, job_queue, postprocessing, shared
from webui import job_runner
from webui.image_input import ImageInput


def _runner():
    return postprocessing._postprocessing_runner()


def _postprocess(tab_index, image, image_folder, input_dir, output_dir, show_results, *script_args):
    """Runs as an "extras" job of the one queue (after the generations ahead of it)."""
    request = {"extras_mode": int(tab_index or 0), "image": image, "image_folder": image_folder, "input_dir": input_dir,
               "output_dir": output_dir, "show_extras_results": show_results, "script_args": list(script_args)}
    try:
        result = job_queue.queue.submit("extras", request, source="ui").future.result()
    except Exception as e:
        return [], job_runner.error_html(job_runner.format_error(e))
    return [(im, None) for im in result.images], result.html_info


def create_tab(ctx):
    tab_index = gr.Number(value=0, visible=False)
    with gr.Row(equal_height=False):
        with gr.Column(variant="compact"):
            with gr.Tabs(elem_id="mode_extras"):
                with gr.Tab("Single Image", id="single_image", elem_id="extras_single_tab") as tab_single:
                    extras_image = ImageInput(label="Source", sources=["upload", "clipboard"], type="filepath", elem_id="extras_image", height=400)
                with gr.Tab("Batch Process", id="batch_process", elem_id="extras_batch_process_tab") as tab_batch:
                    image_batch = gr.Files(label="Batch Process", file_count="multiple", elem_id="extras_image_batch")
                with gr.Tab("Batch from Directory", id="batch_from_directory", elem_id="extras_batch_directory_tab") as tab_dir:
                    extras_batch_input_dir = gr.Textbox(label="Input directory", placeholder="A directory on the same machine where the server is running.", elem_id="extras_batch_input_dir", visible=not shared.cmd_opts.hide_ui_dir_config)
                    extras_batch_output_dir = gr.Textbox(label="Output directory", placeholder="Leave blank to save images to the default path.", elem_id="extras_batch_output_dir", visible=not shared.cmd_opts.hide_ui_dir_config)
                    show_extras_results = gr.Checkbox(label="Show result images", value=True, elem_id="extras_show_extras_results")

            submit = gr.Button("Generate", elem_id="extras_generate", variant="primary")

            script_inputs = []
            runner = _runner()
            for script in runner.scripts_in_preferred_order():
                with gr.Row() as group:
                    runner.create_script_ui(script, script_inputs)
                script.group = group
            runner.ui_created = True

            note = face_restoration.unavailable_reason()
            if note:
                gr.HTML(f"<div class='info'>{html.escape(note)} Put GFPGAN or CodeFormer weights in models/GFPGAN or models/Codeformer to enable it.</div>", elem_id="extras_face_restoration_note")

        with gr.Column():
            gallery = gr.Gallery(label="Result", show_label=False, elem_id="extras_gallery", columns=4, preview=True, format="png", interactive=False)
            html_info = gr.HTML(elem_id="html_info_extras")

    tab_single.select(fn=lambda: 0, outputs=[tab_index])
    tab_batch.select(fn=lambda: 1, outputs=[tab_index])
    tab_dir.select(fn=lambda: 2, outputs=[tab_index])
    extras_image.change(fn=lambda: runner.image_changed(), inputs=[], outputs=[])

    submit.click(
        fn=_postprocess,
        inputs=[tab_index, extras_image, image_batch, extras_batch_input_dir, extras_batch_output_dir, show_extras_results, *script_inputs],
        outputs=[gallery, html_info],
    )
    ctx.register_tab("extras", image=extras_image, gallery=gallery, html_info=html_info)
