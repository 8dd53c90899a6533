"""The row above the tabs: the checkpoint dropdown with its refresh button, then the other settings named in
`quicksettings_list` (Settings -> User interface). A quicksetting applies and saves as soon as it is changed, and is
shown here instead of on the Settings tab, so its `setting_<key>` elem id stays unique on the page."""
import html

import gradio as gr

from modules import errors, settings_guard, shared
from webui import page_assets


def checkpoint_titles():
    from modules import sd_models
    return list(sd_models.checkpoints_list.keys())


def current_checkpoint_title():
    """The loaded (or about to be loaded) checkpoint's title, as it appears in the dropdown's choices."""
    from modules import sd_models
    info = getattr(shared.sd_model, "sd_checkpoint_info", None) if shared.sd_model is not None else None
    if info is None:
        info = sd_models.select_checkpoint()
    if info is None:
        return None
    for title, listed in sd_models.checkpoints_list.items():
        if listed.filename == info.filename:
            return title
    return info.title


def switch_checkpoint(title):
    """Load the checkpoint picked in the dropdown; errors are shown, and the previous model stays."""
    from modules import call_queue, sd_models
    from modules.distributed import cluster
    if not title:
        return ""
    info = sd_models.get_closet_checkpoint_match(title)
    if info is None:
        return f"<span class='error'>Checkpoint {html.escape(title)} was not found; press 🔄 to rescan.</span>"
    try:
        on_workers = cluster.requested(shared.cmd_opts)  # Ray workers load it for the jobs that ask for it
        if not on_workers and (shared.sd_model is None or shared.sd_model.sd_checkpoint_info.filename != info.filename):
            # In the job queue's turn: the model never changes under a running generation.
            call_queue.run_queued(sd_models.reload_model_weights, info=info, kind="switch-checkpoint")
        shared.opts.set("sd_model_checkpoint", info.title)
        shared.opts.save(shared.config_filename)
        return f"{'Selected' if on_workers else 'Loaded'} {html.escape(info.title)}"
    except Exception as e:
        errors.report(f"Error loading checkpoint {title}", exc_info=True)
        return f"<span class='error'>Could not load {html.escape(title)}: {html.escape(str(e))}</span>"


def refresh_checkpoints():
    from modules import sd_models
    sd_models.list_models()
    return gr.update(choices=checkpoint_titles(), value=current_checkpoint_title())


CHECKPOINT_KEY = "sd_model_checkpoint"


def quicksettings_keys(value=None):
    """The known option keys of `quicksettings_list` (a list, or A1111's older comma-separated string), in order,
    each once; unknown keys are left out with a message naming them."""
    from modules.shared import opts
    value = opts.data.get("quicksettings_list", [CHECKPOINT_KEY]) if value is None else value
    if isinstance(value, str):
        value = value.split(",")
    keys = []
    for key in value or []:
        key = str(key).strip()
        if not key or key in keys:
            continue
        if key not in opts.data_labels:
            print(f"Quicksettings: there is no setting named {key!r}; it is not shown.", flush=True)
            continue
        keys.append(key)
    return keys


def extra_quicksettings_keys():
    """Quicksettings other than the checkpoint, which always has its own dropdown at the front of the row."""
    return [key for key in quicksettings_keys() if key != CHECKPOINT_KEY]


def apply_quicksetting(key, value):
    """Set one option from the quicksettings row (running its onchange) and save config.json; returns a message."""
    from modules.shared import opts
    from webui import tab_settings
    info = opts.data_labels.get(key)
    if info is None:
        return f"<span class='error'>There is no setting named {html.escape(str(key))}.</span>"
    if tab_settings.frozen(key, info):
        return f"<span class='error'>The setting {html.escape(key)} is frozen by a command-line flag.</span>"
    old = opts.data.get(key, info.default)
    if isinstance(old, int) and not isinstance(old, bool) and isinstance(value, float) and value.is_integer():
        value = int(value)
    if value == old:
        return ""
    problem = settings_guard.value_problem(key, info, value, old)
    if problem:
        return f"<span class='error'>Could not set {html.escape(info.label or key)}: {html.escape(problem)}.</span>"
    if not opts.set(key, value):
        return f"<span class='error'>Could not set {html.escape(info.label or key)} to {html.escape(repr(value))}.</span>"
    try:
        opts.save(shared.config_filename)
    except OSError as e:
        return f"<span class='error'>Could not save settings to {html.escape(shared.config_filename)}: {html.escape(str(e))}</span>"
    message = f"{info.label or key}: saved."
    if info.restart:
        message += " Restart the program for it to take effect."
    elif info.reload_ui:
        message += " Reload UI for it to take effect."
    return html.escape(message)


def _change_event(component):
    """The event that means "the user changed it": a slider's release (not every step of a drag), else input."""
    for name in ("release", "input", "change"):
        event = getattr(component, name, None)
        if event is not None and (name != "release" or isinstance(component, gr.Slider)):
            return event
    return None


def create_extra_quicksettings(ctx, status):
    """The components for `extra_quicksettings_keys()`, each applied and saved on change; ctx.quicksettings maps
    key -> component."""
    from modules.shared import opts
    from webui import tab_settings
    ctx.quicksettings = {}
    for key in extra_quicksettings_keys():
        try:
            component = tab_settings.create_setting_component(key, opts.data_labels[key])
        except Exception:
            errors.report(f"Error creating the quicksetting {key}", exc_info=True)
            continue
        ctx.quicksettings[key] = component
        event = _change_event(component)
        if event is not None:
            changed = event(fn=lambda value, key=key: apply_quicksetting(key, value), inputs=[component], outputs=[status],
                            queue=False, show_progress="hidden", preprocess=False)  # choices checked by apply_quicksetting
            tab_settings.publish_options(changed, ctx.settings_json)


def create_quicksettings(ctx):
    from modules import initialize
    # A checkpoint's title gains its hash once loaded; give a quick load the chance to finish first.
    initialize.wait_for_model(timeout=10)
    with gr.Row(elem_id="quicksettings"):
        ctx.checkpoint_dropdown = gr.Dropdown(label="Stable Diffusion checkpoint", elem_id="setting_sd_model_checkpoint",
                                              choices=checkpoint_titles(), value=current_checkpoint_title(), scale=4)
        refresh = gr.Button("🔄", elem_id="refresh_sd_model_checkpoint", size="sm", min_width=40, scale=0)
        status = gr.HTML("", elem_id="sd_checkpoint_status")
        quicksettings_status = gr.HTML("", elem_id="quicksettings_status")
        # The settings' values as the page's javascript sees them (A1111's hidden #settings_json; `opts`).
        ctx.settings_json = gr.Textbox(page_assets.options_json(), visible=False, elem_id="settings_json")
        create_extra_quicksettings(ctx, quicksettings_status)
    ctx.checkpoint_switch_event = ctx.checkpoint_dropdown.input(fn=switch_checkpoint, inputs=[ctx.checkpoint_dropdown], outputs=[status], concurrency_limit=1)
    refresh.click(fn=refresh_checkpoints, inputs=[], outputs=[ctx.checkpoint_dropdown], queue=False)
    ctx.refresh_checkpoints = refresh_checkpoints
