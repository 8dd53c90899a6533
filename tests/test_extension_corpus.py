"""The six real extensions of the shared corpus, unmodified: each loads without an error report and builds its UI.

A fixture copies one extension into a temporary extensions/ folder (with the repository's own scripts/, since
several extensions look for the X/Y/Z plot), loads scripts as the web UI does, fires the UI callbacks and builds
both generation tabs' script sections inside a gr.Blocks, the way the main UI does.
"""
import pytest

from modules import gradio_compat, script_callbacks, scripts, shared
from tests.extension_helpers import copy_corpus_extension, install_loader, load_all, unload_all

gradio_compat.apply()
import gradio as gr  # noqa: E402

from webui import script_runner_ui  # noqa: E402

# Component ids of A1111's txt2img tab that Config-Presets tracks; the real tab provides them, this test stands in.
CONFIG_PRESETS_IDS = ["txt2img_sampling", "txt2img_steps", "txt2img_width", "txt2img_height", "txt2img_batch_count",
                      "txt2img_batch_size", "txt2img_hr_scale", "txt2img_hr_upscaler", "txt2img_denoising_strength",
                      "txt2img_cfg_scale"]


@pytest.fixture
def corpus_loader(tmp_path, monkeypatch):
    root = tmp_path / "extensions"
    root.mkdir()
    reports = install_loader(monkeypatch, root, include_root_scripts=True)
    monkeypatch.setitem(shared.opts.data, "disabled_extensions", [])
    monkeypatch.setitem(shared.opts.data, "disable_all_extensions", "none")
    saved_callbacks = {k: list(v) for k, v in script_callbacks.callback_map.items()}
    saved_options = dict(shared.opts.data_labels)

    def load(*names):
        for name in names:
            copy_corpus_extension(root, name)
        load_all()
        return reports

    yield load
    unload_all()
    for k, v in saved_callbacks.items():
        script_callbacks.callback_map[k][:] = v
    script_callbacks.ordered_callbacks_map.clear()
    for key in list(shared.opts.data_labels):
        if key not in saved_options:
            del shared.opts.data_labels[key]


def build_tabs(with_stand_in_fields=False):
    """What the main UI does with scripts: before_ui, settings callbacks, then each tab's scripts section."""
    script_callbacks.before_ui_callback()
    script_callbacks.ui_settings_callback()
    with gr.Blocks() as demo:
        for runner, is_img2img in ((scripts.scripts_txt2img, False), (scripts.scripts_img2img, True)):
            tab = "img2img" if is_img2img else "txt2img"
            with gr.Tab(tab), script_runner_ui.tab_scope(runner):
                if with_stand_in_fields:
                    for elem_id in CONFIG_PRESETS_IDS:
                        gr.Number(value=1, label=elem_id, elem_id=elem_id.replace("txt2img", tab))
                script_runner_ui.create_script_ui(runner, is_img2img=is_img2img)
                if with_stand_in_fields:
                    gr.Button("Info", elem_id=f"{tab}_generation_info_button")
        tabs = script_callbacks.ui_tabs_callback()
    return demo, tabs


def script_by_title(title, runner=None):
    runner = runner or scripts.scripts_txt2img
    return next(s for s in runner.scripts if s.title() == title)


def xyz_axis_labels():
    module = next(d.module for d in scripts.scripts_data if d.script_class.__module__ == "xyz_grid.py")
    return [o.label for o in module.axis_options]


def test_asymmetric_tiling(corpus_loader):
    reports = corpus_loader("asymmetric-tiling-sd-webui")
    build_tabs()
    script = script_by_title("Asymmetric tiling")
    assert script.alwayson
    assert [c.label for c in script.controls] == ["Active", "Tile X", "Tile Y", "Start tiling from step N", "Stop tiling after step N (-1: Don't stop)"]
    assert reports.messages == []


def test_vectorscope_cc(corpus_loader):
    reports = corpus_loader("sd-webui-vectorscope-cc")
    build_tabs()
    script = script_by_title("Vectorscope CC")
    assert len(script.controls) == 13
    assert ("Vec CC Brightness" in script.paste_field_names)
    assert script_by_title("High Dynamic Range") in scripts.scripts_txt2img.selectable_scripts
    assert "cc_metadata" in shared.opts.data_labels
    assert "[Vec.CC] Brightness" in xyz_axis_labels()
    assert reports.messages == []


def test_dynamic_thresholding(corpus_loader):
    reports = corpus_loader("sd-dynamic-thresholding")
    build_tabs()
    script = script_by_title("Dynamic Thresholding (CFG Scale Fix)")
    assert len(script.controls) == 12
    assert "[DynThres] Mimic Scale" in xyz_axis_labels()
    values = script_runner_ui.infotext_values(scripts.scripts_txt2img, {"Dynamic thresholding enabled": "True", "Mimic scale": "5"})
    components = script_runner_ui.infotext_components(scripts.scripts_txt2img)
    restored = dict(zip(map(id, components), values))
    assert restored[id(script.controls[0])] == {"value": True, "__type__": "update"}
    assert restored[id(script.controls[1])] == "5"
    assert reports.messages == []


def test_config_presets(corpus_loader):
    reports = corpus_loader("Config-Presets")
    demo, _ = build_tabs(with_stand_in_fields=True)
    config = demo.get_config_file()
    ids = {c["props"].get("elem_id") for c in config["components"]}
    assert {"config_preset_txt2img_dropdown", "config_preset_img2img_dropdown", "script_config_preset_save_button"} <= ids
    assert reports.messages == []


def test_cutoff(corpus_loader):
    reports = corpus_loader("sd-webui-cutoff")
    build_tabs()
    script = script_by_title("Cutoff")
    assert len(script.controls) == 8
    assert "[Cutoff] Targets" in xyz_axis_labels()
    assert reports.messages == []


def test_tag_autocomplete(corpus_loader):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    reports = corpus_loader("a1111-sd-webui-tagcomplete")
    build_tabs()
    assert shared.opts.tac_active is True
    assert shared.opts.data_labels["tac_keymap"].component is gr.Code
    app = FastAPI()
    script_callbacks.app_started_callback(None, app)
    client = TestClient(app)
    response = client.get("/tacapi/v1/get-use-count", params={"tagname": "cat", "ttype": 0, "neg": False})
    assert response.status_code == 200
    assert reports.messages == []


def test_all_six_together(corpus_loader):
    reports = corpus_loader("asymmetric-tiling-sd-webui", "sd-webui-vectorscope-cc", "sd-dynamic-thresholding",
                            "Config-Presets", "sd-webui-cutoff", "a1111-sd-webui-tagcomplete")
    build_tabs(with_stand_in_fields=True)
    titles = [s.title() for s in scripts.scripts_txt2img.alwayson_scripts]
    for title in ("Asymmetric tiling", "Vectorscope CC", "Dynamic Thresholding (CFG Scale Fix)", "Config Presets", "Cutoff"):
        assert title in titles
    assert reports.messages == []
