"""The Script API: runners, every hook dispatcher, error isolation, the scripts UI and its script_args order."""
import pytest

from modules import gradio_compat, scripts, shared
from tests.extension_helpers import install_loader, load_all, unload_all, write_extension

gradio_compat.apply()
import gradio as gr  # noqa: E402

from webui import script_runner_ui  # noqa: E402

HOOKS_SCRIPT = """
from modules import scripts
import gradio as gr

CALLS = []

class Recorder(scripts.Script):
    def title(self):
        return "Recorder"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        with gr.Accordion("Recorder", open=False):
            enabled = gr.Checkbox(True, label="Enabled", elem_id=self.elem_id("enabled"))
            strength = gr.Slider(0, 1, value=0.25, label="Strength", elem_id=self.elem_id("strength"))
        self.infotext_fields = [(strength, "Recorder strength"), (enabled, lambda d: "Recorder strength" in d)]
        self.paste_field_names = ["Recorder strength"]
        return [enabled, strength]

    def setup(self, p, *args): CALLS.append(("setup", args))
    def before_process(self, p, *args): CALLS.append(("before_process", args))
    def process(self, p, *args): CALLS.append(("process", args))
    def before_process_batch(self, p, *args, **kw): CALLS.append(("before_process_batch", args, kw["batch_number"]))
    def after_extra_networks_activate(self, p, *args, **kw): CALLS.append(("after_extra_networks_activate", args))
    def process_batch(self, p, *args, **kw): CALLS.append(("process_batch", args, kw["seeds"]))
    def process_before_every_sampling(self, p, *args, **kw): CALLS.append(("process_before_every_sampling", args, kw["x"]))
    def before_hr(self, p, *args): CALLS.append(("before_hr", args))
    def on_mask_blend(self, p, mba, *args): CALLS.append(("on_mask_blend", args, mba.is_final_blend))
    def post_sample(self, p, ps, *args):
        ps.samples = "replaced samples"
        CALLS.append(("post_sample", args))
    def postprocess_batch(self, p, *args, **kw): CALLS.append(("postprocess_batch", args, kw["images"]))
    def postprocess_batch_list(self, p, pp, *args, **kw):
        pp.images.append("extra")
        CALLS.append(("postprocess_batch_list", args))
    def postprocess_image(self, p, pp, *args):
        pp.image = "changed image"
        CALLS.append(("postprocess_image", args))
    def postprocess_maskoverlay(self, p, ppmo, *args): CALLS.append(("postprocess_maskoverlay", args, ppmo.index))
    def postprocess_image_after_composite(self, p, pp, *args): CALLS.append(("postprocess_image_after_composite", args))
    def postprocess(self, p, processed, *args): CALLS.append(("postprocess", args, processed))


class Hidden(scripts.Script):
    def title(self):
        return "Hidden"
    def show(self, is_img2img):
        return False


class Picker(scripts.Script):
    def title(self):
        return "Picker"
    def ui(self, is_img2img):
        return [gr.Textbox(value="picked", label="What")]
    def run(self, p, what):
        CALLS.append(("run", what))
        return "processed by picker"


class ImgOnly(scripts.Script):
    def title(self):
        return "Img only"
    def show(self, is_img2img):
        return is_img2img
"""

BROKEN_SCRIPT = """
from modules import scripts
import gradio as gr

class Broken(scripts.Script):
    def title(self):
        return "Broken"
    def show(self, is_img2img):
        return scripts.AlwaysVisible
    def ui(self, is_img2img):
        raise RuntimeError("ui is broken")
    def process(self, p, *args):
        raise RuntimeError("process is broken")

class BrokenInit(scripts.Script):
    def __init__(self):
        raise RuntimeError("constructor is broken")
    def title(self):
        return "Broken init"
"""


class FakeP:
    def __init__(self, args):
        self.script_args = args
        self.extra_generation_params = {}


@pytest.fixture
def loaded(tmp_path, monkeypatch):
    root = tmp_path / "extensions"
    root.mkdir()
    reports = install_loader(monkeypatch, root)
    monkeypatch.setitem(shared.opts.data, "disabled_extensions", [])
    monkeypatch.setitem(shared.opts.data, "disable_all_extensions", "none")
    write_extension(root, "a-recorder", {"scripts/recorder.py": HOOKS_SCRIPT})
    write_extension(root, "b-broken", {"scripts/broken.py": BROKEN_SCRIPT})
    load_all()
    module = next(d.module for d in scripts.scripts_data if d.path.endswith("recorder.py"))
    yield scripts.scripts_txt2img, module, reports
    unload_all()


def build_ui(runner, is_img2img=False):
    with gr.Blocks() as demo:
        with script_runner_ui.tab_scope(runner):
            inputs = script_runner_ui.create_script_ui(runner, is_img2img=is_img2img)
    return demo, inputs


def test_runner_sorts_scripts_and_skips_broken_constructors(loaded):
    runner, _, reports = loaded
    assert [s.title() for s in runner.alwayson_scripts] == ["Recorder", "Broken"]
    assert [s.title() for s in runner.selectable_scripts] == ["Picker"]
    assert [s.title() for s in scripts.scripts_img2img.selectable_scripts] == ["Picker", "Img only"]
    assert runner.script("recorder").title() == "Recorder"
    assert reports.matching("failed to initialize Script")
    assert all(s.is_txt2img and not s.is_img2img for s in runner.scripts)


def test_ui_inputs_line_up_with_script_args(loaded):
    runner, _, reports = loaded
    demo, inputs = build_ui(runner)
    recorder, picker = runner.script("recorder"), runner.script("picker")
    assert isinstance(inputs[0], gr.Dropdown) and inputs[0].elem_id == "script_list"
    assert (recorder.args_from, recorder.args_to) == (1, 3)
    assert (picker.args_from, picker.args_to) == (3, 4)
    assert inputs[1].elem_id == "script_txt2img_recorder_enabled"
    assert script_runner_ui.default_script_args(runner) == [0, True, 0.25, "picked"]
    assert picker.group.visible is False and recorder.group.visible is True
    assert reports.matching("Error calling:") and "ui is broken" in reports.matching("Error calling:")[0]
    assert runner.paste_field_names == ["Recorder strength"]


def test_every_hook_gets_its_own_args_and_a_broken_hook_does_not_stop_others(loaded):
    runner, module, reports = loaded
    build_ui(runner)
    p = FakeP([0, True, 0.5, "picked"])
    runner.setup_scrips(p)
    runner.before_process(p)
    runner.process(p)
    runner.before_process_batch(p, batch_number=0, prompts=["a"], seeds=[1], subseeds=[2])
    runner.after_extra_networks_activate(p, batch_number=0, prompts=["a"], seeds=[1], subseeds=[2], extra_network_data={})
    runner.process_batch(p, batch_number=0, prompts=["a"], seeds=[1], subseeds=[2])
    runner.process_before_every_sampling(p, x="x", noise="n", c="c", uc="uc")
    runner.before_hr(p)
    runner.on_mask_blend(p, scripts.MaskBlendArgs("cur", "nm", "init", "m", "blend"))
    ps = scripts.PostSampleArgs("samples")
    runner.post_sample(p, ps)
    runner.postprocess_batch(p, "batch", batch_number=0)
    pbl = scripts.PostprocessBatchListArgs(["img"])
    runner.postprocess_batch_list(p, pbl, batch_number=0)
    pp = scripts.PostprocessImageArgs("image")
    runner.postprocess_image(p, pp)
    runner.postprocess_maskoverlay(p, scripts.PostProcessMaskOverlayArgs(3, "mask", "overlay"))
    runner.postprocess_image_after_composite(p, scripts.PostprocessImageArgs("image"))
    runner.postprocess(p, "processed")

    args = (True, 0.5)
    assert module.CALLS == [
        ("setup", args), ("before_process", args), ("process", args), ("before_process_batch", args, 0),
        ("after_extra_networks_activate", args), ("process_batch", args, [1]),
        ("process_before_every_sampling", args, "x"), ("before_hr", args), ("on_mask_blend", args, True),
        ("post_sample", args), ("postprocess_batch", args, "batch"), ("postprocess_batch_list", args),
        ("postprocess_image", args), ("postprocess_maskoverlay", args, 3),
        ("postprocess_image_after_composite", args), ("postprocess", args, "processed"),
    ]
    assert ps.samples == "replaced samples" and pp.image == "changed image" and pbl.images == ["img", "extra"]
    broken = reports.matching("Error running process:")
    assert len(broken) == 1 and "broken.py" in broken[0] and "process is broken" in broken[0]


def test_run_calls_the_chosen_script_with_its_slice(loaded):
    runner, module, _ = loaded
    build_ui(runner)
    assert runner.run(FakeP([]), 0, True, 0.5, "x") is None
    assert runner.run(FakeP([]), 1, True, 0.5, "chosen") == "processed by picker"
    assert runner.run(FakeP([]), "Picker", True, 0.5, "by title") == "processed by picker"
    assert module.CALLS[-2:] == [("run", "chosen"), ("run", "by title")]
    with pytest.raises(ValueError, match="script index 5 is out of range"):
        runner.run(FakeP([]), 5, True, 0.5, "x")


def test_infotext_fields_restore_script_controls(loaded):
    runner, _, _ = loaded
    build_ui(runner)
    values = script_runner_ui.infotext_values(runner, {"Recorder strength": 0.75, "Script": "Picker"})
    components = script_runner_ui.infotext_components(runner)
    by_component = dict(zip(map(id, components), values))
    recorder = runner.script("recorder")
    assert by_component[id(recorder.controls[1])] == 0.75
    assert by_component[id(recorder.controls[0])] is True
    assert by_component[id(runner.inputs[0])]["value"] == "Picker"
    picker_group_update = by_component[id(runner.script("picker").group)]
    assert picker_group_update["visible"] is True


def test_component_hooks_and_elem_id_callbacks(loaded, tmp_path):
    runner, _, _ = loaded
    seen = []

    class Watcher(scripts.Script):
        def title(self):
            return "Watcher"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def after_component(self, component, **kwargs):
            if kwargs.get("elem_id") == "txt2img_steps":
                seen.append(("after", component.value))

    watcher = Watcher()
    watcher.on_before_component(lambda c: seen.append(("before-elem", type(c.component).__name__)), elem_id="txt2img_steps")
    watcher.on_after_component(lambda c: seen.append(("after-elem", c.component.elem_id)), elem_id="txt2img_steps")
    runner.scripts.append(watcher)
    runner.alwayson_scripts.append(watcher)
    runner.callback_map.clear()
    runner.apply_on_before_component_callbacks()

    with gr.Blocks():
        with script_runner_ui.tab_scope(runner):
            gr.Slider(1, 150, value=20, label="Sampling steps", elem_id="txt2img_steps")
        gr.Slider(1, 150, value=20, label="Outside the tab", elem_id="txt2img_steps")
    assert seen == [("before-elem", "Slider"), ("after-elem", "txt2img_steps"), ("after", 20)]


def test_elem_id_naming():
    class Both(scripts.Script):
        def title(self):
            return "My Script: v2"

    class OnlyTxt(Both):
        def show(self, is_img2img):
            return not is_img2img

    both, only = Both(), OnlyTxt()
    both.is_img2img = True
    assert both.elem_id("x") == "script_img2img_my_script_v2_x"
    assert only.elem_id("x") == "script_my_script_v2_x"
