"""The row above the tabs: the checkpoint dropdown with its refresh button (and other quicksettings)."""
import html

import gradio as gr

from modules import errors, shared


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
    from modules import sd_models
    if not title:
        return ""
    info = sd_models.get_closet_checkpoint_match(title)
    if info is None:
        return f"<span class='error'>Checkpoint {html.escape(title)} was not found; press 🔄 to rescan.</span>"
    try:
        if shared.sd_model is None or shared.sd_model.sd_checkpoint_info.filename != info.filename:
            sd_models.reload_model_weights(info=info)
        shared.opts.set("sd_model_checkpoint", info.title)
        shared.opts.save(shared.config_filename)
        return f"Loaded {html.escape(info.title)}"
    except Exception as e:
        errors.report(f"Error loading checkpoint {title}", exc_info=True)
        return f"<span class='error'>Could not load {html.escape(title)}: {html.escape(str(e))}</span>"


def refresh_checkpoints():
    from modules import sd_models
    sd_models.list_models()
    return gr.update(choices=checkpoint_titles(), value=current_checkpoint_title())


def create_quicksettings(ctx):
    from modules import initialize
    # A checkpoint's title gains its hash once loaded; give a quick load the chance to finish first.
    initialize.wait_for_model(timeout=10)
    with gr.Row(elem_id="quicksettings"):
        ctx.checkpoint_dropdown = gr.Dropdown(label="Stable Diffusion checkpoint", elem_id="setting_sd_model_checkpoint",
                                              choices=checkpoint_titles(), value=current_checkpoint_title(), scale=4)
        refresh = gr.Button("🔄", elem_id="refresh_sd_model_checkpoint", size="sm", min_width=40, scale=0)
        status = gr.HTML("", elem_id="sd_checkpoint_status")
    ctx.checkpoint_dropdown.input(fn=switch_checkpoint, inputs=[ctx.checkpoint_dropdown], outputs=[status], concurrency_limit=1)
    refresh.click(fn=refresh_checkpoints, inputs=[], outputs=[ctx.checkpoint_dropdown], queue=False)
    ctx.refresh_checkpoints = refresh_checkpoints
