"""Small UI helpers that A1111 extensions import from modules.ui / modules.ui_common (re-exported there)."""
import html

import gradio as gr

from webui.ui_components import ToolButton

refresh_symbol = "\U0001f504"  # 🔄
save_style_symbol = "\U0001f4be"  # 💾
apply_style_symbol = "\U0001f4cb"  # 📋
clear_prompt_symbol = "\U0001f5d1\ufe0f"  # 🗑️
extra_networks_symbol = "\U0001F3B4"  # 🎴
switch_values_symbol = "\U000021C5"  # ⇅
restore_progress_symbol = "\U0001F300"  # 🌀
detect_image_size_symbol = "\U0001F4D0"  # 📐
folder_symbol = "\U0001f4c2"  # 📂
paste_symbol = "\u2199\ufe0f"  # ↙


def gr_show(visible=True):
    return {"visible": visible, "__type__": "update"}


def plaintext_to_html(text, classname=None):
    content = "<br>\n".join(html.escape(x) for x in (text or "").split("\n"))
    return f"<p class='{classname}'>{content}</p>" if classname else f"<p>{content}</p>"


def resize_from_to_html(width, height, scale_by):
    """The "Resize by" caption: from the source's size to the size the job will have."""
    from modules import img2img
    if not width or not height or not scale_by or float(scale_by) <= 0:
        return "no image selected"
    target_width, target_height = img2img.scaled_dimensions(width, height, scale_by)
    return f"resize: from <span class='resolution'>{int(width)}x{int(height)}</span> to <span class='resolution'>{target_width}x{target_height}</span>"


def create_override_settings_dropdown(tabname, row):
    """A1111's "Override settings" multiselect: hidden until it holds "Name: value" entries (pasting an infotext
    puts the settings it names there); its value goes to `create_override_settings_dict`."""
    dropdown = gr.Dropdown([], value=[], label="Override settings", visible=False, elem_id=f"{tabname}_override_settings",
                           multiselect=True, allow_custom_value=True)
    dropdown.change(fn=lambda x: gr.update(visible=bool(x)), inputs=[dropdown], outputs=[dropdown], queue=False)
    return dropdown


def create_refresh_button(refresh_component, refresh_method, refreshed_args, elem_id):
    """A 🔄 button that calls refresh_method() and then updates the component(s) with refreshed_args."""
    refresh_components = refresh_component if isinstance(refresh_component, list) else [refresh_component]
    label = None
    for comp in refresh_components:
        label = getattr(comp, "label", None)
        if label is not None:
            break

    def refresh():
        refresh_method()
        args = refreshed_args() if callable(refreshed_args) else refreshed_args
        for k, v in args.items():
            for comp in refresh_components:
                setattr(comp, k, v)
        return [gr.update(**(args or {})) for _ in refresh_components] if len(refresh_components) > 1 else gr.update(**(args or {}))

    refresh_button = ToolButton(value=refresh_symbol, elem_id=elem_id, tooltip=f"{label}: refresh" if label else "Refresh")
    refresh_button.click(fn=refresh, inputs=[], outputs=refresh_components)
    return refresh_button


def versions_html():
    """The footer line A1111 shows (and extensions copy): version, commit, python, torch, gradio."""
    import platform

    import torch

    from modules import launch_info
    commit = launch_info.commit_hash()
    return (f"version: {html.escape(launch_info.version())}&#x2000;•&#x2000;commit: {html.escape(commit[:8])}"
            f"&#x2000;•&#x2000;python: {platform.python_version()}&#x2000;•&#x2000;torch: {torch.__version__}"
            f"&#x2000;•&#x2000;gradio: {gr.__version__}")
