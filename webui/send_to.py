"""The "Send to img2img / inpaint / extras" buttons: they carry the selected result image (and, into img2img, the
generation parameters from its infotext) to another tab and switch to it.

`bind(ctx)` runs once every tab is built. It reads what tabs registered with `ctx.register_tab(name, ...)`:
a tab with `output` (an OutputPanel) is a source; "img2img" (see tab_img2img) and "extras" (`image`: its input
gr.Image) are targets; and every A1111 `ParamBinding` registered with infotext_utils (PNG Info's buttons, extensions') sends its image
and infotext to its target tab ("txt2img", "img2img", "inpaint", "extras").
"""
import json
import os

import gradio as gr
import numpy as np
from PIL import Image

from modules import errors, scripts
from modules.shared import opts

TAB_IDS = {"txt2img": "txt2img", "img2img": "img2img", "extras": "extras", "pnginfo": "pnginfo"}


def selected_gallery_index(gallery_value, selected_index, generation_info):
    """The index of the gallery image the user selected; without a selection the first image that is not the grid;
    None for an empty gallery."""
    if not gallery_value:
        return None
    index = selected_index
    if index is None or not 0 <= int(index) < len(gallery_value):
        try:
            index = int(json.loads(generation_info or "{}").get("index_of_first_image", 0))
        except (ValueError, TypeError, AttributeError):
            index = 0
        index = min(max(index, 0), len(gallery_value) - 1)
    return int(index)


def gallery_image(gallery_value, selected_index, generation_info):
    """The gallery image the user selected; without a selection the first image that is not the grid."""
    index = selected_gallery_index(gallery_value, selected_index, generation_info)
    return None if index is None else to_pil(gallery_value[index])


def to_pil(item):
    """A gallery item ((image, caption), dict, path, array or PIL image) -> PIL image."""
    if isinstance(item, (tuple, list)):
        item = item[0]
    if isinstance(item, dict):
        item = item.get("image") or item.get("path") or item.get("name")
        if isinstance(item, dict):
            item = item.get("path")
    if item is None:
        return None
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, np.ndarray):
        return Image.fromarray(item)
    if isinstance(item, (str, os.PathLike)):
        image = Image.open(item)
        image.load()
        return image
    return None


def infotext_of(generation_info, selected_index, image):
    """The infotext of the sent image: from the job's generation info, else from the image itself."""
    try:
        info = json.loads(generation_info or "{}")
        infotexts = info.get("infotexts") or []
        first = int(info.get("index_of_first_image", 0))
        index = selected_index if selected_index is not None else first
        if 0 <= int(index) < len(infotexts):
            return infotexts[int(index)]
    except (ValueError, TypeError, AttributeError):
        pass
    if image is not None:
        return image.info.get("parameters", "")
    return ""


def _paste_targets(target, source_name):
    """The img2img controls filled from the infotext; seed and size follow the send_seed / send_size settings."""
    from webui import infotext_apply
    targets = infotext_apply.paste_targets(target["form"], target["seed"], None)
    skip = set()
    if not opts.send_seed:
        skip |= {"Seed", "Variation seed", "Variation seed strength", "Seed resize from-1", "Seed resize from-2", "__seed_extras"}
    if not opts.send_size:
        skip |= {"Size-1", "Size-2"}
    if source_name == "txt2img":
        skip.add("Denoising strength")  # a txt2img image's strength is its hires pass's, not an img2img setting
    return [(key, component) for key, component in targets if key not in skip]


def _editor_value(image):
    return {"background": image, "layers": [], "composite": image} if image is not None else None


def _bind_to_img2img(ctx, button, source_name, image_fn, image_inputs, mode):
    """Clicking `button` puts the image into img2img (mode 0) or inpaint (mode 2), pastes parameters, switches tab."""
    from webui import infotext_apply
    target = ctx.tabs.get("img2img")
    tabs = getattr(ctx, "tabs_component", None)
    if target is None or tabs is None:
        button.visible = False
        return
    destination = target["init_img"] if mode == 0 else target["inpaint"]
    paste = _paste_targets(target, source_name)
    pasted_components = [c for _, c in paste] + infotext_apply.script_components(scripts.scripts_img2img)
    outputs = [destination, tabs, *target["mode_select_outputs"], *pasted_components]

    def send(*values):
        try:
            image, text = image_fn(*values)
        except Exception:
            errors.report(f"Error sending an image from {source_name}", exc_info=True)
            image, text = None, ""
        if image is None:
            return [gr.update()] * len(outputs)
        value = image if mode == 0 else _editor_value(image)
        pasted = (infotext_apply.apply_infotext(text, paste, scripts.scripts_img2img) if text and text.strip()
                  else [gr.update() for _ in pasted_components])
        return [value, gr.Tabs(selected=TAB_IDS["img2img"]), *target["select_mode"](mode), *pasted]

    button.click(fn=send, inputs=image_inputs, outputs=outputs, queue=False, show_progress="hidden")


def _bind_to_extras(ctx, button, source_name, image_fn, image_inputs):
    target = ctx.tabs.get("extras")
    tabs = getattr(ctx, "tabs_component", None)
    destination = target.get("image") if target else None
    if destination is None or tabs is None:
        button.visible = False
        return
    outputs = [destination, tabs]
    select_single = target.get("select_single")
    if select_single is not None:
        outputs += list(target.get("select_single_outputs", []))

    def send(*values):
        try:
            image, _ = image_fn(*values)
        except Exception:
            errors.report(f"Error sending an image from {source_name}", exc_info=True)
            image = None
        if image is None:
            return [gr.update()] * len(outputs)
        extra = list(select_single()) if select_single is not None else []
        return [image, gr.Tabs(selected=TAB_IDS["extras"]), *extra]

    button.click(fn=send, inputs=image_inputs, outputs=outputs, queue=False, show_progress="hidden")


def _bind_output_panel(ctx, source_name, out):
    """An OutputPanel's buttons send its selected gallery image and its infotext."""
    def image_fn(gallery_value, selected_index, generation_info):
        image = gallery_image(gallery_value, selected_index, generation_info)
        return image, infotext_of(generation_info, selected_index, image)

    inputs = [out.gallery, out.selected_index, out.generation_info]
    _bind_to_img2img(ctx, out.send_to_img2img, source_name, image_fn, inputs, mode=0)
    _bind_to_img2img(ctx, out.send_to_inpaint, source_name, image_fn, inputs, mode=2)
    _bind_to_extras(ctx, out.send_to_extras, source_name, image_fn, inputs)


def _bind_to_txt2img(ctx, button, source_name, image_fn, image_inputs):
    """Pastes the parameters of the sent image's infotext into txt2img and switches to it."""
    from webui import infotext_apply
    target = ctx.tabs.get("txt2img")
    tabs = getattr(ctx, "tabs_component", None)
    if target is None or tabs is None:
        return
    paste = infotext_apply.paste_targets(target["form"], target["seed"], target.get("hires"))
    if not opts.send_seed:
        paste = [(k, c) for k, c in paste if k not in ("Seed", "Variation seed", "Variation seed strength", "__seed_extras")]
    if not opts.send_size:
        paste = [(k, c) for k, c in paste if k not in ("Size-1", "Size-2")]
    pasted_components = [c for _, c in paste] + infotext_apply.script_components(scripts.scripts_txt2img)
    outputs = [tabs, *pasted_components]

    def send(*values):
        try:
            _, text = image_fn(*values)
        except Exception:
            errors.report(f"Error sending parameters from {source_name}", exc_info=True)
            text = ""
        pasted = (infotext_apply.apply_infotext(text, paste, scripts.scripts_txt2img) if text and text.strip()
                  else [gr.update() for _ in pasted_components])
        return [gr.Tabs(selected=TAB_IDS["txt2img"]), *pasted]

    button.click(fn=send, inputs=image_inputs, outputs=outputs, queue=False, show_progress="hidden")


def _in_this_page(component):
    """Registered bindings outlive a page; only components of the page being built can get events."""
    from gradio.context import get_blocks_context
    config = get_blocks_context()
    return config is None or getattr(component, "_id", None) in config.blocks


def _bind_param_binding(ctx, binding):
    """A1111's ParamBinding (PNG Info, extensions): its image component and infotext go to its target tab."""
    button = binding.paste_button
    if button is None or not _in_this_page(button):
        return
    inputs = [c for c in (binding.source_image_component, binding.source_text_component) if c is not None]
    has_image = binding.source_image_component is not None
    has_text = binding.source_text_component is not None

    def image_fn(*values):
        image_value = values[0] if has_image else None
        text = values[-1] if has_text else ""
        if isinstance(image_value, list):
            image = gallery_image(image_value, None, None)
        else:
            image = to_pil(image_value)
        if not text and image is not None:
            text = image.info.get("parameters", "")
        return image, text or ""

    source_name = binding.source_tabname or "pnginfo"
    if binding.tabname == "txt2img":
        _bind_to_txt2img(ctx, button, source_name, image_fn, inputs)
    elif binding.tabname in ("img2img", "inpaint"):
        _bind_to_img2img(ctx, button, source_name, image_fn, inputs, mode=0 if binding.tabname == "img2img" else 2)
    elif binding.tabname == "extras":
        _bind_to_extras(ctx, button, source_name, image_fn, inputs)


def bind(ctx):
    for name, parts in list(ctx.tabs.items()):
        if parts.get("output") is None:
            continue
        try:
            _bind_output_panel(ctx, name, parts["output"])
        except Exception:
            errors.report(f"Error binding the send-to buttons of {name}", exc_info=True)
    from modules import infotext_utils
    for binding in list(infotext_utils.registered_param_bindings):
        try:
            _bind_param_binding(ctx, binding)
        except Exception:
            errors.report(f"Error binding the {binding.tabname!r} send-to button", exc_info=True)
