"""PNG Info tab: drop an image, read its generation parameters (PNG chunk, EXIF UserComment, GIF comment,
NovelAI), see them parsed field by field, and send them to another tab.

Registers ctx.tabs["pnginfo"] = {image, generation_info, send_buttons}; the page's send-to wiring (webui/send_to.py)
connects the buttons to the target tabs' paste fields.
"""
import html

import gradio as gr

from modules import images, infotext_utils
from webui import infotext_paste
from webui.image_input import ImageInput


def _text_html(text):
    return "<br>\n".join(html.escape(x) for x in str(text).split("\n"))


def run_pnginfo(path_or_image):
    """(infotext, html): every text item of the image, the parameters parsed as A1111 reads them."""
    if path_or_image is None:
        return "", ""
    try:
        image = images.read(path_or_image) if isinstance(path_or_image, str) else path_or_image
    except Exception as e:
        return "", f"<div class='error'>Could not read the image: {html.escape(str(e))}</div>"
    geninfo, items = images.read_info_from_image(image)
    parts = []
    if geninfo:
        parts.append(f"<div><p><b>parameters</b></p><p>{_text_html(geninfo)}</p></div>")
        parsed = infotext_utils.parse_generation_parameters(geninfo, skip_fields=[])
        written = {"Prompt", "Negative prompt"} | {k.rsplit("-", 1)[0] if k.endswith(("-1", "-2")) else k
                                                   for k, _ in infotext_utils.re_param.findall(geninfo.strip().split("\n")[-1])}
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{_text_html(v)}</td></tr>"
                       for k, v in parsed.items() if k in written or k.rsplit("-", 1)[0] in written)
        parts.append(f"<table class='pnginfo-parsed'>{rows}</table>")
    for key, text in items.items():
        parts.append(f"<div><p><b>{html.escape(str(key))}</b></p><p>{_text_html(text)}</p></div>")
    if not parts:
        parts.append("<div><p>Nothing found in the image.</p></div>")
    return geninfo or "", "\n".join(parts)


def create_tab(ctx):
    with gr.Row(equal_height=False):
        with gr.Column(variant="panel"):
            image = ImageInput(elem_id="pnginfo_image", label="Source", sources=["upload", "clipboard"], type="filepath", height=480)
        with gr.Column(variant="panel"):
            html_info = gr.HTML(elem_id="pnginfo_html_info")
            generation_info = gr.Textbox(visible=False, elem_id="pnginfo_generation_info")
            buttons = infotext_paste.create_buttons(["txt2img", "img2img", "inpaint", "extras"])
    infotext_paste.bind_buttons(buttons, image, generation_info)
    image.change(run_pnginfo, inputs=[image], outputs=[generation_info, html_info])
    ctx.register_tab("pnginfo", image=image, generation_info=generation_info, send_buttons=buttons)
