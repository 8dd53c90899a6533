"""A1111's results-column helpers that extensions call from modules.ui_common: the 💾 Save / 🗃️ Zip action
(`save_files`, in webui/gallery_saving), the infotext of the selected gallery image (`update_generation_info`) and a
results column for an extension's own tab (`create_output_panel`)."""
import json

import gradio as gr

from webui.extension_ui_helpers import plaintext_to_html
from webui.gallery_saving import save_files  # noqa: F401  (A1111's ui_common.save_files)
from webui.output_panel import OutputPanel


def update_generation_info(generation_info, html_info, img_index):
    """The infotext of gallery image `img_index` from the job's JSON; the shown one when there is none."""
    try:
        infotexts = json.loads(generation_info)["infotexts"]
    except (TypeError, ValueError, KeyError):
        return html_info, gr.update()
    if img_index is None or not 0 <= img_index < len(infotexts):
        return html_info, gr.update()
    return plaintext_to_html(infotexts[img_index]), gr.update()


def create_output_panel(tabname, outdir, toprow=None):
    """The results column of a generation tab (gallery, infotext, log, generation info) for an extension's tab;
    A1111 names its parts gallery, generation_info, infotext, html_log and button_upscale."""
    panel = OutputPanel(tabname)
    panel.html_log = panel.log
    panel.outdir = outdir
    return panel
