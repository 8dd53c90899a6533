"""Settings: options saved atomically, a corrupt config.json kept aside, extension options in their section."""
import json
import os

from modules import options, shared
from modules.options import OptionInfo, Options, options_section


def fresh_options():
    templates = {}
    templates.update(options_section(("saving-images", "Saving images/grids"), {
        "samples_format": OptionInfo("png", "File format for images"),
        "jpeg_quality": OptionInfo(80, "Quality", "Slider", {"minimum": 1, "maximum": 100, "step": 1}),
    }))
    return Options(templates, set())


def test_save_and_load_round_trip(tmp_path):
    path = str(tmp_path / "config.json")
    o = fresh_options()
    o.set("samples_format", "jpg")
    o.save(path)
    assert not os.path.exists(path + ".tmp")
    again = fresh_options()
    again.load(path)
    assert again.samples_format == "jpg" and again.jpeg_quality == 80
    assert again.config_problem is None


def test_corrupt_config_is_kept_aside_and_defaults_used(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{ this is not json")
    o = fresh_options()
    o.load(str(path))
    assert o.samples_format == "png"
    assert not path.exists()
    aside = tmp_path / "config.json.corrupt-0"
    assert aside.read_text() == "{ this is not json"
    assert "config.json.corrupt-0" in o.config_problem


def test_extension_option_appears_in_its_section_and_survives_a_restart(tmp_path):
    path = str(tmp_path / "config.json")
    o = fresh_options()
    o.add_option("my_ext_strength", OptionInfo(0.5, "Strength", section=("my-ext", "My extension")))
    assert o.data_labels["my_ext_strength"].section == ("my-ext", "My extension")
    o.set("my_ext_strength", 0.8)
    o.save(path)
    restarted = fresh_options()
    restarted.load(path)  # loaded before the extension registers its option, as at startup
    restarted.add_option("my_ext_strength", OptionInfo(0.5, "Strength", section=("my-ext", "My extension")))
    assert restarted.my_ext_strength == 0.8


def test_onchange_runs_and_a_failing_handler_keeps_the_old_value():
    o = fresh_options()
    seen = []
    o.onchange("samples_format", lambda: seen.append(o.samples_format), call=False)
    assert o.set("samples_format", "webp") and seen == ["webp"]

    def fail():
        raise ValueError("nope")
    o.onchange("jpeg_quality", fail, call=False)
    assert not o.set("jpeg_quality", 50)
    assert o.jpeg_quality == 80


def test_apply_from_the_page_sets_only_the_sent_settings_and_refuses_a_garbled_request(tmp_path, monkeypatch):
    from webui import tab_settings
    monkeypatch.setattr(shared, "config_filename", str(tmp_path / "config.json"))
    keys = ["samples_format", "jpeg_quality"]
    old_format, old_quality = shared.opts.samples_format, shared.opts.jpeg_quality
    try:
        # the page sent only the quality (the one edited there): the format stays as it is stored
        assert "1 setting changed: jpeg_quality." in tab_settings.apply_edited_settings(keys, json.dumps({"jpeg_quality": 42}))
        assert shared.opts.jpeg_quality == 42 and shared.opts.samples_format == old_format
        for garbled in ("not json", json.dumps([[0, "x"]]), json.dumps({"samples_format": "x", "sd_model_checkpoint": "y"}),
                        json.dumps({"samples_format": "x", "no_such_setting": 1})):
            message = tab_settings.apply_edited_settings(keys, garbled)
            assert message.startswith("<span class='error'>Settings not applied"), garbled
        assert "no_such_setting" in message
        assert shared.opts.samples_format == old_format and shared.opts.jpeg_quality == 42
    finally:
        shared.opts.set("samples_format", old_format)
        shared.opts.set("jpeg_quality", old_quality)


def test_apply_settings_reports_changes_and_restart_needs(tmp_path, monkeypatch):
    from webui import tab_settings
    monkeypatch.setattr(shared, "config_filename", str(tmp_path / "config.json"))
    old_format, old_show = shared.opts.samples_format, shared.opts.show_warnings
    try:
        message = tab_settings.apply_settings(["samples_format", "show_warnings"], ["webp", not old_show])
        assert "2 settings changed: samples_format, show_warnings." in message
        assert "Reload UI for: show_warnings" in message
        saved = json.loads((tmp_path / "config.json").read_text())
        assert saved["samples_format"] == "webp"
        assert tab_settings.apply_settings(["samples_format"], ["webp"]) == "Nothing changed."
    finally:
        shared.opts.set("samples_format", old_format)
        shared.opts.set("show_warnings", old_show)


def test_the_settings_tab_and_quicksettings_refuse_what_would_break_every_later_generation(tmp_path, monkeypatch):
    # The rule POST /options obeys: a format images cannot be saved in ("exe" typed into the samples format box)
    # was stored, and every later generation failed when it saved its picture.
    from webui import quicksettings, tab_settings
    monkeypatch.setattr(shared, "config_filename", str(tmp_path / "config.json"))
    old_format = shared.opts.samples_format
    message = tab_settings.apply_settings(["samples_format"], ["exe"])
    assert "Could not change: samples_format (must be an image file format" in message
    assert "Could not set" in quicksettings.apply_quicksetting("samples_format", "exe")
    assert "Could not set" in quicksettings.apply_quicksetting("jpeg_quality", 500)  # beyond its slider
    assert shared.opts.samples_format == old_format and shared.opts.jpeg_quality != 500


def test_cast_value_reads_infotext_strings():
    assert shared.opts.cast_value("CLIP_stop_at_last_layers", "2") == 2
    assert shared.opts.cast_value("tiling", "True") is True
    assert shared.opts.cast_value("randn_source", "NV") == "NV"


def test_apply_settings_checks_choices_made_now_and_offers_saved_values(tmp_path, monkeypatch):
    """Choices from a function are read again when a change is applied (a model added after the page was built is
    a valid choice); a value outside them is refused by name; a saved value missing from the choices is offered."""
    from webui import tab_settings
    monkeypatch.setattr(shared, "config_filename", str(tmp_path / "config.json"))
    models = ["a.safetensors"]
    monkeypatch.setitem(shared.opts.data_labels, "test_model_choice",
                        OptionInfo("a.safetensors", "Model", "Dropdown", lambda: {"choices": list(models)}))
    monkeypatch.setitem(shared.opts.data_labels, "test_tags", OptionInfo(["x"], "Tags", "CheckboxGroup", {"choices": []}))
    monkeypatch.setitem(shared.opts.data, "test_model_choice", "a.safetensors")
    monkeypatch.setitem(shared.opts.data, "test_tags", ["x"])

    import gradio as gr
    with gr.Blocks():
        tags = tab_settings.create_setting_component("test_tags", shared.opts.data_labels["test_tags"])
    assert [value for _, value in tags.choices] == ["x"]

    models.append("b.safetensors")  # added after the page was built
    assert "1 setting changed: test_model_choice." in tab_settings.apply_settings(["test_model_choice"], ["b.safetensors"])
    message = tab_settings.apply_settings(["test_model_choice"], ["missing.safetensors"])
    assert "Could not change: test_model_choice (&#x27;missing.safetensors&#x27; is not one of its choices)" in message
    assert shared.opts.test_model_choice == "b.safetensors"
    assert "1 setting changed: test_tags." in tab_settings.apply_settings(["test_tags"], [[]])
