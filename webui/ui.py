"""Builds the whole page: the checkpoint picker (quicksettings) above the tabs, then every tab."""
import importlib

import gradio as gr

from modules import errors, script_callbacks, shared
from webui import model_size, quicksettings, send_to, settings_on_load


class UiContext:
    """What tabs share: each registers its controls so others (send-to, paste) can reach them."""

    def __init__(self):
        self.tabs = {}
        self.model_changed_listeners = []
        self.checkpoint_dropdown = None
        self.extra_networks = {}           # tabname -> its Extra Networks cards (webui/extra_networks_ui.py)
        self.checkpoint_selector = None    # the hidden parts behind a checkpoint card's click

    def register_tab(self, name, **parts):
        self.tabs[name] = parts


# (module under webui/, tab title, elem id) in A1111's order.
BUILTIN_TABS = [
    ("tab_txt2img", "txt2img", "txt2img"),
    ("tab_img2img", "img2img", "img2img"),
    ("tab_extras", "Extras", "extras"),
    ("tab_pnginfo", "PNG Info", "pnginfo"),
    ("tab_checkpoint_merger", "Checkpoint Merger", "modelmerger"),
]
TRAILING_TABS = [
    ("tab_settings", "Settings", "settings"),
    ("tab_extensions", "Extensions", "extensions"),
]


def _trailing_tabs():
    """Settings and Extensions, after the Workers tab when jobs run on Ray workers."""
    from modules.distributed import cluster
    workers = [("tab_workers", "Workers", "workers")] if cluster.requested(shared.cmd_opts) else []
    return workers + TRAILING_TABS


def _build_tab(ctx, module_name, title, elem_id):
    module = importlib.import_module(f"webui.{module_name}")
    # The content is built before its tab, as A1111 does (each tab's interface exists when the page is put
    # together): extensions that hook the making of a tab (mov2mov inserts its tab after img2img's) find it complete.
    with gr.Column(render=False, elem_id=f"{elem_id}_tab_content") as content:
        try:
            module.create_tab(ctx)
        except Exception:
            errors.report(f"Error building the {title} tab", exc_info=True)
            gr.HTML(f"<div class='error'>The {title} tab could not be built; see the console for details.</div>")
    with gr.Tab(title, id=elem_id, elem_id=f"tab_{elem_id}"):
        content.render()


def create_ui():
    # Extensions' settings exist before any tab is built (as in A1111): their tabs and the quicksettings row read them.
    script_callbacks.ui_settings_callback()
    ctx = UiContext()
    extension_tabs = script_callbacks.ui_tabs_callback() or []
    shared.tab_names[:] = [title for _, title, _ in BUILTIN_TABS] + [str(item[1]) for item in extension_tabs if len(item) > 1] \
        + [title for _, title, _ in TRAILING_TABS]
    with gr.Blocks(title="Stable Diffusion", analytics_enabled=False) as demo:
        quicksettings.create_quicksettings(ctx)
        if shared.opts.config_problem:
            gr.HTML(f"<div class='warning'>{shared.opts.config_problem}</div>", elem_id="config_problem")
        with gr.Tabs(elem_id="tabs") as tabs:
            for module_name, title, elem_id in BUILTIN_TABS:
                _build_tab(ctx, module_name, title, elem_id)
            for item in extension_tabs:
                try:
                    interface, label, elem_id = item[0], item[1], item[2]
                    with gr.Tab(label, id=elem_id, elem_id=f"tab_{elem_id}"):
                        interface.render()
                except Exception:
                    errors.report(f"Error adding extension tab {item!r}", exc_info=True)
            for module_name, title, elem_id in _trailing_tabs():
                _build_tab(ctx, module_name, title, elem_id)
        ctx.tabs_component = tabs
        send_to.bind(ctx)
        model_size.bind(ctx, ctx.checkpoint_switch_event)
        settings_on_load.bind(demo, ctx)
    demo.ui_context = ctx
    return demo
