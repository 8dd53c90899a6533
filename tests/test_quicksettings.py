"""Quicksettings: the settings named in quicksettings_list sit beside the checkpoint dropdown, apply at once and are
saved to config.json; they are not repeated on the Settings tab."""
import json

import gradio as gr
import pytest

from modules import shared
from modules.shared import opts


@pytest.fixture
def quicksettings_list():
    saved = opts.data.get("quicksettings_list")
    saved_values = {k: opts.data.get(k) for k in ("CLIP_stop_at_last_layers", "samples_save", "eta_noise_seed_delta")}
    yield lambda value: opts.set("quicksettings_list", value)
    opts.set("quicksettings_list", saved)
    for key, value in saved_values.items():
        if value is None:
            opts.data.pop(key, None)
        else:
            opts.set(key, value)


def build_page():
    from webui import quicksettings, tab_settings
    from webui.ui import UiContext
    ctx = UiContext()
    with gr.Blocks() as demo:
        quicksettings.create_quicksettings(ctx)
        with gr.Tabs():
            with gr.Tab("Settings"):
                tab_settings.create_tab(ctx)
    return demo, ctx


def descendants(block):
    found = []
    for child in getattr(block, "children", []):
        found.append(child)
        found += descendants(child)
    return found


def read_config():
    with open(shared.config_filename, encoding="utf8") as f:
        return json.load(f)


def test_default_list_is_the_checkpoint_only():
    from webui import quicksettings
    assert opts.get_default("quicksettings_list") == ["sd_model_checkpoint"]
    assert quicksettings.quicksettings_keys(["sd_model_checkpoint"]) == ["sd_model_checkpoint"]


def test_keys_are_known_unique_and_ordered_and_a_string_list_is_accepted(capsys):
    from webui import quicksettings
    keys = quicksettings.quicksettings_keys(["sd_model_checkpoint", "CLIP_stop_at_last_layers", "no_such_setting", "CLIP_stop_at_last_layers", "samples_save"])
    assert keys == ["sd_model_checkpoint", "CLIP_stop_at_last_layers", "samples_save"]
    assert "no_such_setting" in capsys.readouterr().out
    assert quicksettings.quicksettings_keys("sd_model_checkpoint, CLIP_stop_at_last_layers") == ["sd_model_checkpoint", "CLIP_stop_at_last_layers"]


def test_listed_settings_are_beside_the_checkpoint_and_not_on_the_settings_tab(quicksettings_list):
    quicksettings_list(["sd_model_checkpoint", "CLIP_stop_at_last_layers", "samples_save"])
    demo, ctx = build_page()
    assert list(ctx.quicksettings) == ["CLIP_stop_at_last_layers", "samples_save"]
    clip_skip = ctx.quicksettings["CLIP_stop_at_last_layers"]
    assert isinstance(clip_skip, gr.Slider) and clip_skip.elem_id == "setting_CLIP_stop_at_last_layers"
    assert isinstance(ctx.quicksettings["samples_save"], gr.Checkbox)
    # each elem id appears once on the page
    elem_ids = [b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)]
    assert elem_ids.count("setting_CLIP_stop_at_last_layers") == 1
    assert elem_ids.count("setting_samples_save") == 1
    assert "CLIP_stop_at_last_layers" not in ctx.tabs["settings"]["keys"]
    # the quicksettings row holds the checkpoint dropdown and the listed settings
    row = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "quicksettings")
    inside = descendants(row)
    assert ctx.checkpoint_dropdown in inside and clip_skip in inside and ctx.quicksettings["samples_save"] in inside


def test_changing_a_quicksetting_applies_it_and_saves_config(quicksettings_list):
    quicksettings_list(["sd_model_checkpoint", "CLIP_stop_at_last_layers", "samples_save"])
    demo, ctx = build_page()
    component = ctx.quicksettings["CLIP_stop_at_last_layers"]
    # the component's user-change event runs the apply function
    handlers = [fn for fn in demo.fns.values() if component in fn.inputs]
    assert handlers, "no event bound to the quicksetting"
    message = handlers[0].fn(2.0)
    assert opts.CLIP_stop_at_last_layers == 2 and isinstance(opts.CLIP_stop_at_last_layers, int)
    assert "Clip skip" in message
    assert read_config()["CLIP_stop_at_last_layers"] == 2

    checkbox = ctx.quicksettings["samples_save"]
    handler = next(fn for fn in demo.fns.values() if checkbox in fn.inputs)
    handler.fn(False)
    assert opts.samples_save is False and read_config()["samples_save"] is False


def test_bad_inputs_get_a_message_naming_them(quicksettings_list):
    from webui import quicksettings
    assert "no_such_setting" in quicksettings.apply_quicksetting("no_such_setting", 1)
    message = quicksettings.apply_quicksetting("CLIP_stop_at_last_layers", opts.CLIP_stop_at_last_layers)
    assert message == ""  # unchanged: nothing to save
