"""The results column: gallery, progress bar with ETA, infotext, and the generation info the ♻️ buttons read."""
import json
import time

import gradio as gr

from modules import shared
from modules.call_queue import time_taken_html
from webui import gallery_saving, job_runner, open_folder
from webui.toprow import infotext_html


class OutputPanel:
    def __init__(self, tabname: str):
        self.tabname = tabname
        self.progress = gr.HTML("", elem_id=f"{tabname}_progress", elem_classes=["progress-area"])
        self.gallery = gr.Gallery(label="Output", show_label=False, elem_id=f"{tabname}_gallery", columns=4,
                                  preview=True, format="png", interactive=False, height="auto")
        with gr.Row(elem_id=f"{tabname}_output_buttons"):
            self.open_folder_button = gr.Button("📂", elem_id=f"open_folder_{tabname}", size="sm", min_width=40,
                                                visible=not shared.cmd_opts.hide_ui_dir_config)
            self.send_to_img2img = gr.Button("🖼️ Send to img2img", elem_id=f"{tabname}_send_to_img2img", size="sm")
            self.send_to_inpaint = gr.Button("🎨️ Send to inpaint", elem_id=f"{tabname}_send_to_inpaint", size="sm")
            self.send_to_extras = gr.Button("📐 Send to extras", elem_id=f"{tabname}_send_to_extras", size="sm")
            self.save_button = gr.Button("💾 Save", elem_id=f"save_{tabname}", size="sm")
            self.zip_button = gr.Button("🗃️ Zip", elem_id=f"save_zip_{tabname}", size="sm")
            # txt2img's ✨ (webui/txt2img_upscale), wired by its tab
            self.button_upscale = gr.Button("✨ Upscale", elem_id=f"{tabname}_upscale", size="sm",
                                            elem_classes=["tool"]) if tabname == "txt2img" else None
        self.download_files = gr.File(None, file_count="multiple", interactive=False, show_label=False, visible=False,
                                      elem_id=f"download_files_{tabname}")
        self.infotext = gr.HTML("", elem_id=f"html_info_{tabname}", elem_classes=["infotext-area"])
        self.log = gr.HTML("", elem_id=f"html_log_{tabname}")
        self.generation_info = gr.Textbox(visible=False, elem_id=f"generation_info_{tabname}")
        # (extension-compat) A1111's hidden button at the very bottom of the results column; extensions (Config
        # Presets) add their UI in after_component of this elem_id.
        self.generation_info_button = gr.Button(visible=False, elem_id=f"{tabname}_generation_info_button")
        self.outputs = [self.gallery, self.progress, self.infotext, self.log, self.generation_info]
        # The gallery image the user picked (None until one is picked in the current result): Send to, ♻️ and the
        # infotext shown follow it, as in A1111.
        self.selected_index = gr.State(None)
        self.gallery.select(fn=self.on_select, inputs=[self.generation_info], outputs=[self.selected_index, self.infotext],
                            queue=False, show_progress="hidden")
        self.gallery.change(fn=lambda: None, inputs=[], outputs=[self.selected_index], queue=False, show_progress="hidden")
        gallery_saving.bind_save_buttons(self)
        self.outdir = None  # (extension tabs: create_output_panel sets theirs)
        self.open_folder_button.click(fn=lambda: open_folder.open_folder(open_folder.output_folder(self.tabname, self.outdir)),
                                      inputs=[], outputs=[self.log], queue=False, show_progress="hidden")

    @staticmethod
    def on_select(generation_info, evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)
        return index, selected_infotext_html(generation_info, index)

    def progress_update(self, progress_html, preview):
        gallery = [preview] if preview is not None else gr.skip()
        return gallery, progress_html, gr.skip(), gr.skip(), gr.skip()

    def follow(self, job_events, shown=None):
        """Gradio updates for job_runner.run_job's events: progress while it runs, then the result (through `shown`,
        which may make it into what the results should show) with A1111's "Time taken" line (from the press to the
        result)."""
        began = time.perf_counter()
        for kind, a, b in job_events:
            if kind == "progress":
                yield self.progress_update(a, b)
            else:
                yield self.result_update(shown(a) if shown is not None and a is not None else a, b,
                                         time.perf_counter() - began)

    def result_update(self, result, error, seconds=None):
        """The finished job's JobResult (or its error) into the gallery, infotext, log and generation info."""
        taken = time_taken_html(seconds) if seconds is not None else ""
        if error is not None:
            return gr.skip(), "", "", job_runner.error_html(job_runner.format_error(error)) + taken, gr.skip()
        images = [(image, None) for image in result.images] if result.images else []
        infotexts = result.infotexts
        info = infotexts[min(result.index_of_first_image, len(infotexts) - 1)] if infotexts else ""
        comments = result.comments.strip() if result.comments else ""
        log = f"<div class='comments'>{comments}</div>" if comments else ""
        return images, "", infotext_html(info), log + taken, result.info


def selected_infotext_html(generation_info, index):
    """The infotext of gallery image `index` (the grid's included) from the job's generation info; unchanged when
    the info has none for it."""
    try:
        infotexts = json.loads(generation_info or "{}").get("infotexts") or []
    except (ValueError, AttributeError):
        return gr.skip()
    if index is None or not 0 <= index < len(infotexts):
        return gr.skip()
    return infotext_html(infotexts[index])
