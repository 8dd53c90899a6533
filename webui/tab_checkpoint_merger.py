"""The Checkpoint Merger tab (A1111 ui_checkpoint_merger.py, plus Sigmoid and Inverse sigmoid); the work is done by
modules.merge, streamed tensor by tensor, as a job of the one queue while the tab shows its progress.

After a successful merge every function registered with on_model_merged(fn) is called with the new file's path,
and, when the page has one (ctx.checkpoint_dropdown), the checkpoint dropdown above the tabs is refreshed.
"""
import html

import gradio as gr

from modules import errors, extras, job_queue, merge_methods, sd_models, sd_vae, shared
from webui import quicksettings
from webui.ui_components import FormRow, ToolButton

METHOD_LABELS = [m.label for m in merge_methods.METHODS.values()]
CONFIG_SOURCES = ["A, B or C", "B", "C", "Don't"]
POLL_S = 0.25

_merged_listeners = []


def on_model_merged(fn):
    """Call fn(filename) after each successful merge (e.g. to rescan checkpoints); returns fn."""
    _merged_listeners.append(fn)
    return fn


def _notify_merged(filename):
    for fn in list(_merged_listeners):
        try:
            fn(filename)
        except Exception:  # noqa: BLE001 - a listener's failure must not hide the saved file
            errors.report(f"Error in checkpoint-merged listener {getattr(fn, '__name__', fn)}", exc_info=True)


def vae_choices():
    sd_vae.refresh_vae_list()
    return ["None"] + list(sd_vae.vae_dict)


def method_description(label):
    try:
        return merge_methods.get_method(label).description
    except ValueError:
        return ""


def progress_html(fraction, text):
    return (f"<div class='progress-wrap' data-fraction='{fraction:.3f}'>"
            f"<div class='progress-bar' style='width:{fraction * 100:.1f}%'></div>"
            f"<div class='progress-text'>{fraction * 100:.0f}% · {html.escape(text)}</div></div>")


def result_html(message):
    ok = message.startswith("Checkpoint saved to ")
    return f"<p class='{'' if ok else 'error'}'>{html.escape(message)}</p>"


def create_tab(ctx=None):
    titles = extras.checkpoint_titles()
    with gr.Row(equal_height=False):
        with gr.Column(variant="compact"):
            gr.HTML("<p style='margin-bottom: 0.7em'>A merger of the two checkpoints will be generated in your "
                    "<b>checkpoint</b> directory.</p>")
            with FormRow(elem_id="modelmerger_models"):
                primary = gr.Dropdown(titles, label="Primary model (A)", elem_id="modelmerger_primary_model_name", value=None)
                secondary = gr.Dropdown(titles, label="Secondary model (B)", elem_id="modelmerger_secondary_model_name", value=None)
                tertiary = gr.Dropdown(titles, label="Tertiary model (C)", elem_id="modelmerger_tertiary_model_name", value=None)
                refresh_models = ToolButton("🔄", elem_id="modelmerger_refresh_checkpoints")
            custom_name = gr.Textbox(label="Custom Name (Optional)", elem_id="modelmerger_custom_name")
            multiplier = gr.Slider(minimum=0.0, maximum=1.0, step=0.05, value=0.3, label="Multiplier (M) - set to 0 to get model A",
                                   elem_id="modelmerger_interp_amount")
            interp_method = gr.Radio(METHOD_LABELS, value="Weighted sum", label="Interpolation Method",
                                     info=method_description("Weighted sum"), elem_id="modelmerger_interp_method")
            with FormRow():
                checkpoint_format = gr.Radio(["ckpt", "safetensors"], value="safetensors", label="Checkpoint format",
                                             elem_id="modelmerger_checkpoint_format")
                save_as_half = gr.Checkbox(value=False, label="Save as float16", elem_id="modelmerger_save_as_half")
                overwrite = gr.Checkbox(value=False, label="Overwrite an existing file", elem_id="modelmerger_overwrite")
            config_source = gr.Radio(CONFIG_SOURCES, value=CONFIG_SOURCES[0], type="index", label="Copy config from",
                                     elem_id="modelmerger_config_method")
            with FormRow():
                bake_in_vae = gr.Dropdown(vae_choices(), value="None", label="Bake in VAE", elem_id="modelmerger_bake_in_vae")
                refresh_vae = ToolButton("🔄", elem_id="modelmerger_refresh_bake_in_vae")
            discard_weights = gr.Textbox(value="", label="Discard weights with matching name", elem_id="modelmerger_discard_weights")
            with gr.Accordion("Metadata", open=False) as metadata_editor:
                with FormRow():
                    save_metadata = gr.Checkbox(value=True, label="Save metadata", elem_id="modelmerger_save_metadata")
                    add_merge_recipe = gr.Checkbox(value=True, label="Add merge recipe metadata", elem_id="modelmerger_add_recipe")
                    copy_metadata_fields = gr.Checkbox(value=True, label="Copy metadata from merged models", elem_id="modelmerger_copy_metadata")
                metadata_json = gr.TextArea("{}", label="Metadata in JSON format", elem_id="modelmerger_metadata_json")
                read_metadata = gr.Button("Read metadata from selected checkpoints", elem_id="modelmerger_read_metadata")
            merge_button = gr.Button("Merge", variant="primary", elem_id="modelmerger_merge")
        with gr.Column(variant="compact", elem_id="modelmerger_results_container"):
            with gr.Group(elem_id="modelmerger_results_panel"):
                progress = gr.HTML(elem_id="modelmerger_progress")
                result = gr.HTML(elem_id="modelmerger_result")
    merged_file = gr.State(None)

    interp_method.change(fn=lambda label: gr.update(info=method_description(label)), inputs=[interp_method], outputs=[interp_method], queue=False)
    checkpoint_format.change(fn=lambda fmt: gr.update(visible=fmt == "safetensors"), inputs=[checkpoint_format], outputs=[metadata_editor], queue=False)

    def refresh_titles():
        choices = extras.checkpoint_titles()
        return [gr.update(choices=choices) for _ in range(3)]
    refresh_models.click(fn=refresh_titles, inputs=[], outputs=[primary, secondary, tertiary])
    refresh_vae.click(fn=lambda: gr.update(choices=vae_choices()), inputs=[], outputs=[bake_in_vae])
    read_metadata.click(fn=extras.read_metadata, inputs=[primary, secondary, tertiary], outputs=[metadata_json])

    inputs = [primary, secondary, tertiary, interp_method, multiplier, save_as_half, custom_name, checkpoint_format,
              config_source, bake_in_vae, discard_weights, save_metadata, add_merge_recipe, copy_metadata_fields,
              metadata_json, overwrite]
    merge_event = merge_button.click(fn=_merge_handler, inputs=inputs, outputs=[progress, result, primary, secondary, tertiary, merged_file],
                                     concurrency_limit=1, show_progress="hidden")

    parts = dict(primary=primary, secondary=secondary, tertiary=tertiary, result=result, progress=progress,
                 merged_file=merged_file, merge_button=merge_button, merge_event=merge_event)
    if ctx is not None:  # None: the tab built on its own (tests)
        if ctx.checkpoint_dropdown is not None:
            merge_event.then(fn=quicksettings.refresh_checkpoints, inputs=[], outputs=[ctx.checkpoint_dropdown], queue=False)
        ctx.register_tab("modelmerger", **parts)
    return parts


def _merge_handler(primary, secondary, tertiary, interp_method, multiplier, save_as_half, custom_name, checkpoint_format,
                   config_source, bake_in_vae, discard_weights, save_metadata, add_merge_recipe, copy_metadata_fields,
                   metadata_json, overwrite):
    args = (primary, secondary, tertiary, interp_method, multiplier, save_as_half, custom_name, checkpoint_format,
            config_source, bake_in_vae, discard_weights, save_metadata, add_merge_recipe, copy_metadata_fields, metadata_json)
    shared.state.interrupted = False
    for item in _run(args, overwrite):
        yield item


def _run(args, overwrite):
    """Yields (progress, result, A, B, C choices, merged file) while extras.run_modelmerger works in a thread."""
    status = {"fraction": 0.0, "text": "Starting"}
    outcome = {}

    def work():
        try:
            # A1111's positional arguments; overwrite and progress are ours, by keyword
            outcome["value"] = extras.run_modelmerger(None, *args, overwrite=overwrite, progress=lambda f, t: status.update(fraction=f, text=t))
        except Exception as e:  # noqa: BLE001 - run_modelmerger reports its own errors; this is a last resort
            errors.report("Error merging checkpoints", exc_info=True)
            outcome["value"] = [None] * 4 + [f"Error merging checkpoints: {e}"]

    # One engine job at a time: the merge takes its turn in the job queue like a generation.
    job = job_queue.queue.submit_call(work, kind="modelmerger", source="ui")
    while not job.future.done():
        if job.status == "queued":
            ahead = job_queue.queue.progress(job.task_id).queue_position or 0
            status["text"] = f"In queue: {ahead} job{'s' if ahead != 1 else ''} ahead" if ahead else "In queue: next"
        yield progress_html(status["fraction"], status["text"]), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            job.future.result(timeout=POLL_S)
        except TimeoutError:
            pass
    job.future.result()
    *updates, message = outcome["value"]
    filename = message[len("Checkpoint saved to "):] if message.startswith("Checkpoint saved to ") else None
    if filename:
        _notify_merged(filename)
    choices = [_refreshed(u, value) for u, value in zip(updates[:3], args[:3])]
    yield "", result_html(message), *choices, filename or gr.skip()


def _refreshed(update, value):
    """A model dropdown's new choices with its selection under its title now: a checkpoint the merge hashed is
    listed as "name [hash]", and Gradio refuses the next Merge with a bare "Error" if the old title stays selected."""
    if not (isinstance(update, dict) and "choices" in update):
        return gr.skip()
    info = sd_models.get_closet_checkpoint_match(value) if value else None
    if info is not None and info.title in update["choices"]:
        value = info.title
    return gr.update(choices=update["choices"], value=value if value in update["choices"] else None)
