"""Extensions written here, loaded from a temporary extensions/ folder, watching a REAL generation and a REAL UI
build: every callback the engine fires and every Script hook, at its point, in processing order, with its
parameters; changes they make take effect; a broken extension beside a working one is reported by name and the
working one still works; metadata.ini orders hooks.
"""
import os

import numpy as np
import pytest
from PIL import Image

from modules import script_callbacks, scripts, shared
from tests.extension_helpers import ExtensionSandbox, build_tabs, txt2img
from tests.extension_sources import BROKEN_AT_IMPORT, BROKEN_IN_CALLBACKS, BROKEN_IN_UI, RECORDER

@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    box = ExtensionSandbox(tmp_path / "extensions", monkeypatch, include_root_scripts=False)
    yield box
    box.close()


@pytest.fixture
def recorder(sandbox, tiny_model):
    """The recorder extension loaded (after the model, so its log starts empty); (its module, error reports)."""
    sandbox.add("recorder", {"scripts/recorder.py": RECORDER})
    reports = sandbox.load()
    build_tabs()
    module = next(d.module for d in scripts.scripts_data if d.path.endswith("recorder.py"))
    module.EVENTS.clear()
    return module, reports


def names(events, keep=None):
    return [e[0] for e in events if keep is None or e[0] in keep]


CFG = ("cfg_denoiser", "cfg_denoised", "cfg_after_cfg")


def test_every_script_hook_fires_in_processing_order_with_its_own_args(recorder, tiny_model, tmp_path):
    module, reports = recorder
    res = txt2img(tiny_model, steps=3, outpath_samples=str(tmp_path / "out"), do_not_save_samples=False)
    args = (True, 0.5)
    hooks = [e for e in module.EVENTS if e[0] not in CFG]
    assert names(hooks) == [
        "setup", "before_process", "process", "before_process_batch", "after_extra_networks_activate", "process_batch",
        "process_before_every_sampling", "post_sample", "postprocess_batch", "postprocess_batch_list",
        "postprocess_image", "postprocess_maskoverlay", "postprocess_image_after_composite",
        "before_image_saved", "image_saved", "postprocess",
    ]
    by_name = {e[0]: e for e in hooks}
    for name in ("setup", "before_process", "process", "before_process_batch", "process_batch", "post_sample", "postprocess"):
        assert by_name[name][1] == args, name
    assert by_name["before_process_batch"][2:] == (0, [1234])
    assert by_name["process_batch"][2] == ["a red circle"]
    assert by_name["process_before_every_sampling"][2] == (1, 4, 8, 8)
    assert by_name["post_sample"][2] == (1, 4, 8, 8)
    assert by_name["postprocess_batch"][2] == (1, 3, 64, 64)
    assert by_name["postprocess_image"][2] == (64, 64)
    assert by_name["postprocess_maskoverlay"][2:] == (0, False)
    assert by_name["postprocess"][2] == 1
    # What process() wrote reaches the infotext.
    assert "Recorder strength: 0.5" in res.infotexts[0]
    # The sampler fired the CFG callbacks once per step, in order, inside sampling.
    cfg = [e for e in module.EVENTS if e[0] in CFG]
    assert [(e[0], e[2]) for e in cfg] == [(name, 3) for _ in range(3) for name in CFG]
    # As in A1111, sampling_step is shared.state.sampling_step, which the sampler's step callback sets after each
    # model call: the first two calls both see 0.
    assert [e[1] for e in cfg if e[0] == "cfg_denoiser"] == [0, 0, 1]
    first = cfg[0]
    assert first[3] == (2, 4, 8, 8) and first[4] == (2,)  # cond and uncond rows batched together
    assert first[5] == (1, 77, 32) and first[6] == (1, 77, 32) and first[7] is True
    assert cfg[1][4] is True and cfg[2][3] == (1, 4, 8, 8)
    start = names(module.EVENTS).index("process_before_every_sampling")
    assert names(module.EVENTS)[start + 1:start + 1 + 3 * 3] == list(CFG) * 3
    assert reports.messages == []


def test_image_saved_callbacks_see_the_file_and_can_add_png_text(recorder, tiny_model, tmp_path):
    module, _ = recorder
    out = tmp_path / "out"
    txt2img(tiny_model, outpath_samples=str(out), do_not_save_samples=False, seed=77)
    saved = [e for e in module.EVENTS if e[0] in ("before_image_saved", "image_saved")]
    assert saved == [("before_image_saved", "00000-77.png", True, True), ("image_saved", "00000-77.png", True)]
    files = [os.path.join(dp, f) for dp, _, fs in os.walk(out) for f in fs if f.endswith(".png")]
    info = Image.open(files[0]).info
    assert info["recorder"] == "was here" and "Seed: 77" in info["parameters"]


def test_image_grid_callback_fires_when_a_grid_is_made(recorder, tiny_model, tmp_path):
    module, _ = recorder
    res = txt2img(tiny_model, batch_size=2, do_not_save_grid=False, outpath_grids=str(tmp_path / "grids"))
    assert ("image_grid", 2, 2, 1) in module.EVENTS
    assert len(res.images) == 3  # the grid first, then both images


def test_before_hr_fires_between_the_two_passes(recorder, tiny_model):
    module, _ = recorder
    txt2img(tiny_model, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=2, denoising_strength=0.5)
    hooks = [e for e in names(module.EVENTS) if e not in CFG]
    first = hooks.index("process_before_every_sampling")
    assert hooks[first:first + 4] == ["process_before_every_sampling", "before_hr", "process_before_every_sampling", "post_sample"]
    sampling = [e for e in module.EVENTS if e[0] == "process_before_every_sampling"]
    assert [e[2] for e in sampling] == [(1, 4, 8, 8), (1, 4, 12, 12)]
    # The hires pass fires the CFG callbacks for its own steps.
    assert [e[2] for e in module.EVENTS if e[0] == "cfg_after_cfg"] == [3, 3, 3, 2, 2]


def test_inpainting_fires_mask_blend_and_mask_overlay(recorder, tiny_model):
    from modules import processing
    module, _ = recorder
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    p = processing.StableDiffusionProcessingImg2Img(
        sd_model=tiny_model, init_images=[image], mask=mask, prompt="x", steps=3, width=64, height=64, seed=5,
        denoising_strength=0.75, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    p.scripts = scripts.scripts_img2img
    from webui import script_runner_ui
    p.script_args = script_runner_ui.default_script_args(scripts.scripts_img2img)
    processing.process_images(p)
    blends = [e for e in module.EVENTS if e[0] == "on_mask_blend"]
    assert blends and blends[-1][2] is True  # the final blend after sampling
    assert any(e[2] is False for e in blends)  # blends during sampling
    overlay = [e for e in module.EVENTS if e[0] == "postprocess_maskoverlay"]
    assert overlay == [("postprocess_maskoverlay", (True, 0.5), 0, True)]


def test_model_loaded_fires_when_a_checkpoint_loads(recorder, tiny_checkpoint_path):
    from modules import sd_models
    module, _ = recorder
    sd_models.load_model(sd_models.CheckpointInfo(tiny_checkpoint_path))
    assert ("model_loaded", "tiny") in module.EVENTS


def test_infotext_pasted_callback_can_rewrite_parameters(recorder):
    from webui import infotext_apply
    module, _ = recorder
    params = infotext_apply.parse("a cat\nSampler: Euler, Recorder steps: 9, Seed: 3, Size: 64x64")
    assert params["Steps"] == "9" and "Recorder steps" not in params
    assert ("infotext_pasted", "a cat") in module.EVENTS


def test_cfg_callbacks_change_the_image(sandbox, tiny_model):
    sandbox.add("zero-guidance", {"scripts/z.py": """
        from modules import script_callbacks, shared
        def zero(params):
            if getattr(shared, "zero_guidance_on", False):
                params.x = params.x * 0
        script_callbacks.on_cfg_after_cfg(zero)
    """})
    sandbox.load()
    build_tabs()
    plain = np.asarray(txt2img(tiny_model).images[0])
    shared.zero_guidance_on = True
    try:
        zeroed = np.asarray(txt2img(tiny_model).images[0])
    finally:
        del shared.zero_guidance_on
    assert not np.array_equal(plain, zeroed)


def test_real_ui_build_fires_component_tab_and_settings_callbacks(recorder):
    from webui import ui
    module, reports = recorder
    module.EVENTS.clear()
    script_callbacks.before_ui_callback()
    demo = ui.create_ui()
    events = module.EVENTS
    assert ("before_ui",) in events and ("ui_tabs",) in events and ("ui_settings",) in events
    # Every component fires before/after_component with its constructor's keywords; the generation tabs are built
    # in their script runner's scope, so the tab's scripts see its components too.
    assert ("before_component", "txt2img_prompt", "Prompt", "Textbox") in events
    assert ("after_component", "txt2img_steps", "Sampling steps", "Slider") in events
    assert ("script_after_component", "txt2img", "txt2img_steps") in events
    before = events.index(("before_component", "txt2img_steps", "Sampling steps", "Slider"))
    after = events.index(("after_component", "txt2img_steps", "Sampling steps", "Slider"))
    assert before < events.index(("script_after_component", "txt2img", "txt2img_steps")) and before < after
    ids = {c["props"].get("elem_id") for c in demo.get_config_file()["components"]}
    assert "recorder_tab_text" in ids and "tab_recorder_tab" in ids
    assert "setting_recorder_option" in ids and shared.opts.recorder_option == 3
    assert "txt2img_generation_info_button" in ids and "img2img_generation_info_button" in ids
    assert reports.messages == []


def test_reload_fires_before_reload_and_script_unloaded(recorder, sandbox):
    module, _ = recorder
    script_callbacks.app_reload_callback()
    scripts.reload_scripts()
    assert module.EVENTS[-2:] == [("before_reload",), ("script_unloaded",)]


def test_broken_extensions_are_reported_by_name_and_a_working_one_still_works(sandbox, tiny_model, tmp_path):
    sandbox.add("broken-import", {"scripts/bad.py": BROKEN_AT_IMPORT})
    sandbox.add("broken-ui", {"scripts/bad_ui.py": BROKEN_IN_UI})
    sandbox.add("broken-callbacks", {"scripts/bad_cb.py": BROKEN_IN_CALLBACKS})
    sandbox.add("recorder", {"scripts/recorder.py": RECORDER})
    reports = sandbox.load()
    _, tabs = build_tabs()
    module = next(d.module for d in scripts.scripts_data if d.path.endswith("recorder.py"))
    res = txt2img(tiny_model, steps=2, outpath_samples=str(tmp_path / "out"), do_not_save_samples=False)

    def reported(text, where):
        found = [m for m in reports.messages if text in m]
        assert found, f"no report containing {text!r}"
        assert any(where in m for m in found), f"the report for {text!r} does not name {where!r}: {found}"

    reported("broken at import", "broken-import")
    reported("broken in ui", "bad_ui.py")
    reported("broken in process_batch", "bad_cb.py")
    for category in ("cfg_denoiser", "cfg_after_cfg", "before_image_saved", "ui_settings", "ui_tabs"):
        reported(f"broken-callbacks/bad_cb.py/{category}", "bad_cb.py")
    # The working extension saw the whole job; the image was made and saved.
    assert ("postprocess", (True, 0.5), 1) in module.EVENTS
    assert [e[0] for e in module.EVENTS].count("cfg_after_cfg") == 2
    assert ("Recorder", "recorder_tab") in [(t[1], t[2]) for t in tabs]  # its tab, beside a failing on_ui_tabs
    assert res.images and os.listdir(tmp_path / "out")
    # A script whose ui() failed has no controls, yet its other hooks still run.
    assert "Broken UI process ran: True" in res.infotexts[0]


def test_metadata_ini_orders_script_hooks_in_a_real_generation(sandbox, tiny_model):
    hook = '''
from modules import scripts
class S(scripts.Script):
    def title(self):
        return "{name}"
    def show(self, is_img2img):
        return scripts.AlwaysVisible
    def process(self, p, *args):
        p.extra_generation_params["Order"] = (p.extra_generation_params.get("Order", "") + " {name}").strip()
'''
    sandbox.add("aaa", {"scripts/a.py": hook.format(name="A")})
    sandbox.add("bbb", {"scripts/b.py": hook.format(name="B")})
    sandbox.add("zzz", {"scripts/z.py": hook.format(name="Z"), "metadata.ini": "[scripts/z.py]\nBefore = aaa\n"})
    sandbox.add("mmm", {"scripts/m.py": hook.format(name="M"), "metadata.ini": "[scripts]\nAfter = zzz/z.py\n"})
    sandbox.load()
    build_tabs()
    res = txt2img(tiny_model, steps=1)
    order = res.infotexts[0].split("Order: ")[1].split(",")[0].split()
    assert order.index("Z") < order.index("A")
    assert order.index("M") > order.index("Z")
    assert sorted(order) == ["A", "B", "M", "Z"]
