"""The Gradio side of infotext pasting (A1111's create_buttons / bind_buttons / connect_paste_params_buttons).

modules.infotext_utils holds the registry (ParamBinding, paste_fields) and the engine-side casting; this module
makes the buttons and turns pasted values into component updates.
"""
import gradio as gr

from modules import infotext_utils, script_callbacks

_labels = {"txt2img": "Send to txt2img", "img2img": "Send to img2img", "inpaint": "Send to inpaint", "extras": "Send to extras"}


def create_buttons(tabs_list):
    return {tab: gr.Button(_labels.get(tab, f"Send to {tab}"), elem_id=f"{tab}_tab", size="sm") for tab in tabs_list}


def bind_buttons(buttons, send_image, send_generate_info):
    """Register each button as a ParamBinding; the page's send-to wiring connects them to their target tab."""
    for tabname, button in buttons.items():
        source_text_component = send_generate_info if isinstance(send_generate_info, gr.components.Component) else None
        source_tabname = send_generate_info if isinstance(send_generate_info, str) else None
        infotext_utils.register_paste_params_button(infotext_utils.ParamBinding(
            paste_button=button, tabname=tabname, source_text_component=source_text_component,
            source_image_component=send_image, source_tabname=source_tabname))


def paste_updates(text, fields):
    """Gradio updates for `fields` ([(component, key or function)]) from an infotext."""
    params = infotext_utils.parse_generation_parameters(infotext_utils.read_last_prompt_if_empty(text or ""))
    script_callbacks.infotext_pasted_callback(text, params)
    values = infotext_utils.paste_values(params, fields, [getattr(c, "value", None) for c, _ in fields])
    return [gr.update() if v is infotext_utils.KEEP else gr.update(value=v) for v in values]


def connect_paste(button, paste_fields, input_comp, override_settings_component=None, tabname=None):
    fields = list(paste_fields)
    button.click(fn=lambda text: paste_updates(text, fields), inputs=[input_comp], outputs=[c for c, _ in fields], show_progress="hidden")


def connect_paste_params_buttons():
    """Wire every registered ParamBinding whose target tab registered paste fields."""
    for binding in infotext_utils.registered_param_bindings:
        target = infotext_utils.paste_fields.get(binding.tabname)
        if target is None or not target.get("fields") or binding.source_text_component is None:
            continue
        connect_paste(binding.paste_button, target["fields"], binding.source_text_component, target.get("override_settings_component"), binding.tabname)
