"""A1111's modules.extras entry points, kept because extensions call them; the work is done in modules.merge.

run_modelmerger returns what A1111's returns to its UI: four dropdown updates (primary, secondary, tertiary and
the quicksettings checkpoint dropdown, as the plain dicts gradio's update() produces) and the result message.
"""
import html
import json
import os

from modules import merge, sd_models
from modules.merge_plan import MergeError


def _update(**kwargs):
    return {"__type__": "update", **kwargs}


def checkpoint_titles():
    """Titles for the checkpoint dropdowns, rescanned (a merge just added a file)."""
    sd_models.list_models()
    return sd_models.checkpoint_tiles()


def to_half(tensor, enable):
    """A1111's helper: float32 tensors become float16 when enabled."""
    import torch
    if enable and tensor.dtype == torch.float:
        return tensor.half()
    return tensor


def read_metadata(primary_model_name, secondary_model_name, tertiary_model_name):
    """The inputs' safetensors metadata merged A, then B, then C, as indented JSON (the tab's "Read metadata" button)."""
    metadata = {}
    for name in (primary_model_name, secondary_model_name, tertiary_model_name):
        if not name:
            continue
        try:
            model = merge.resolve_checkpoint(name)
        except MergeError:
            continue
        if model.info is not None:
            metadata.update(model.info.metadata)
            continue
        if model.filename.lower().endswith(".safetensors"):
            from modules.safetensors_stream import SafetensorsReader, SafetensorsError
            try:
                with SafetensorsReader(model.filename) as reader:
                    metadata.update(reader.metadata)
            except (SafetensorsError, OSError):
                pass
    return json.dumps(metadata, indent=4, ensure_ascii=False)


def create_config(ckpt_result, config_source, a, b, c):
    """Copy a .yaml beside A/B/C (0: first found, 1: B, 2: C, 3: none) beside the merged checkpoint."""
    inputs = {}
    for role, name in (("A", a), ("B", b), ("C", c)):
        if name:
            try:
                inputs[role] = merge.resolve_checkpoint(name, role)
            except MergeError:
                pass
    return merge.copy_config(ckpt_result, config_source, inputs)


def run_modelmerger(id_task, primary_model_name, secondary_model_name, tertiary_model_name, interp_method, multiplier,
                    save_as_half, custom_name, checkpoint_format, config_source, bake_in_vae, discard_weights,
                    save_metadata, add_merge_recipe, copy_metadata_fields, metadata_json, overwrite=False, progress=None):
    """A1111's merger entry point. Our additions: overwrite (an existing file is refused unless True) and
    progress(fraction, text), called besides shared.state's progress fields."""
    from modules import shared
    state = shared.state
    state.begin(job="model-merge")
    state.job_count = 1
    state.total_steps = 1000
    state.completed_steps = 0

    def report(fraction, text):
        state.textinfo = text
        state.completed_steps = int(fraction * 1000)
        if progress is not None:
            progress(fraction, text)

    def fail(message):
        state.textinfo = message
        state.end()
        return [*[_update() for _ in range(4)], message]

    try:
        result = merge.merge_checkpoints(
            primary_model_name, secondary_model_name, tertiary_model_name, method=interp_method,
            multiplier=multiplier, save_as_half=save_as_half, custom_name=custom_name or "",
            checkpoint_format=checkpoint_format, config_source=config_source, bake_in_vae=bake_in_vae,
            discard_weights=discard_weights or "", save_metadata=save_metadata, add_merge_recipe=add_merge_recipe,
            copy_metadata_fields=copy_metadata_fields, metadata_json=metadata_json, overwrite=overwrite,
            progress=report, should_stop=lambda: state.interrupted)
    except MergeError as e:
        return fail(str(e))
    except Exception as e:  # noqa: BLE001 - never take the app down; report with traceback
        from modules import errors
        errors.report(f"Error merging checkpoints: {e}", exc_info=True)
        return fail(f"Error merging checkpoints: {e}")

    titles = checkpoint_titles()
    _hash_new_checkpoint(result.filename)
    state.textinfo = "Checkpoint saved"
    state.end()
    print(f"Checkpoint saved to {result.filename}.")
    return [*[_update(choices=titles) for _ in range(4)], "Checkpoint saved to " + result.filename]


def _hash_new_checkpoint(filename):
    """A1111 computes the new model's short hash right away, so its title carries it."""
    info = sd_models.get_closet_checkpoint_match(os.path.basename(filename))
    if info is not None:
        info.calculate_shorthash()


def plaintext_to_html(text):
    return "<p>" + "<br>\n".join(html.escape(x) for x in text.split("\n")) + "</p>"


def run_pnginfo(image):
    """The PNG Info tab's handler: ('', generation parameters, HTML of every text chunk)."""
    if image is None:
        return "", "", ""
    from modules import images
    geninfo, items = images.read_info_from_image(image)
    items = {**{"parameters": geninfo}, **items}
    info = ""
    for key, text in items.items():
        if text is None:
            continue
        info += f"<div>\n<p><b>{html.escape(str(key))}</b></p>\n{plaintext_to_html(str(text))}\n</div>\n"
    if not info:
        info = "<div><p>Nothing found in the image.</p></div>"
    return "", geninfo, info
