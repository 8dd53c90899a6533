"""Gradio 3 spellings extensions use keep working on Gradio 6, and every component fires the component hooks."""
import os
import pytest

from modules import errors, gradio_compat, script_callbacks
from tests.extension_helpers import Reports

gradio_compat.apply()
import gradio as gr  # noqa: E402


@pytest.fixture
def callbacks():
    saved = {k: list(v) for k, v in script_callbacks.callback_map.items()}
    yield
    for k, v in saved.items():
        script_callbacks.callback_map[k][:] = v
    script_callbacks.ordered_callbacks_map.clear()


def dependencies(demo):
    return demo.get_config_file()["dependencies"]


def test_old_event_keywords_are_translated():
    with gr.Blocks() as demo:
        box = gr.Checkbox(False, label="Enable")
        slider = gr.Slider(0, 1, value=0.5, label="R")
        box.change(_js="my_js_function", fn=None, inputs=[box], show_progress=False)
        slider.input(None, inputs=[slider], _js="(r) => { return r; }")
        button = gr.Button("go")
        button.click(fn=lambda: 1, outputs=[slider], api_name=False).then(None, inputs=[slider], _js="(r) => r")
    deps = dependencies(demo)
    assert [d["js"] for d in deps] == ["my_js_function", "(r) => { return r; }", None, "(r) => r"]
    assert deps[0]["show_progress"] == "hidden"


def test_style_update_box_and_image_source():
    with gr.Blocks() as demo:
        with gr.Box(elem_id="boxed"):
            with gr.Row().style(equal_height=True):
                text = gr.Textbox(label="t").style(container=False)
                gallery = gr.Gallery().style(grid=4, height="auto")
                image = gr.Image(source="upload", tool="sketch", type="pil")
    assert text.container is False
    assert gallery.columns == 4
    assert image.sources == ["upload"]
    config = demo.get_config_file()
    box = next(c for c in config["components"] if c["props"].get("elem_id") == "boxed")
    assert box["type"] == "group"
    assert gr.Checkbox.update(value=True) == {"value": True, "__type__": "update"}
    assert gr.Dropdown.update(choices=["a"], value="a")["choices"] == ["a"]
    assert gr.Row.update(visible=False) == {"visible": False, "__type__": "update"}
    assert gr.components.IOComponent is gr.components.Component


def test_unknown_keyword_is_dropped_with_one_warning(capsys):
    with gr.Blocks():
        gr.Textbox(label="a", some_gradio3_keyword=1)
        gr.Textbox(label="b", some_gradio3_keyword=2)
    err = capsys.readouterr().err
    assert err.count("some_gradio3_keyword") == 1
    assert "test_gradio_compat.py" in err


def test_every_component_fires_component_callbacks_with_its_kwargs(callbacks):
    seen = []
    script_callbacks.on_before_component(lambda c, **kw: seen.append(("before", type(c).__name__, kw.get("elem_id"), hasattr(c, "_id"))))
    script_callbacks.on_after_component(lambda c, **kw: seen.append(("after", type(c).__name__, kw.get("elem_id"), c.elem_id)))
    with gr.Blocks():
        with gr.Row():
            gr.Button("x", elem_id="btn")
            gr.Dropdown(["a", "b"], value="a", elem_id="dd")
    assert ("before", "Button", "btn", False) in seen
    assert ("after", "Button", "btn", "btn") in seen
    assert ("after", "Dropdown", "dd", "dd") in seen
    assert not any(name == "Row" for _, name, _, _ in seen)  # layouts are not components


def test_a_failing_component_callback_does_not_break_the_ui(callbacks, monkeypatch):
    reports = Reports()
    monkeypatch.setattr(errors, "report", reports)
    script_callbacks.on_after_component(lambda c, **kw: 1 / 0)
    with gr.Blocks():
        t = gr.Textbox(label="still built")
    assert t.label == "still built"
    assert reports.matching("Error executing callback")


def test_components_carry_a1111_css_classes():
    with gr.Blocks():
        t = gr.Textbox(elem_classes="mine")
    assert t.elem_classes == ["mine", "gradio-textbox"]


def test_ui_components_render_as_their_gradio_parents():
    from modules.ui_components import DropdownMulti, FormRow, InputAccordion, ToolButton
    with gr.Blocks() as demo:
        with FormRow():
            ToolButton(value="\U0001f504", elem_id="refresh")
        with InputAccordion(True, label="Feature", elem_id="feat") as feature:
            gr.Slider(label="inside")
        DropdownMulti(choices=["a", "b"], value=["a"], label="multi")
    types = {c["props"].get("elem_id"): c["type"] for c in demo.get_config_file()["components"]}
    assert types["refresh"] == "button"
    assert types["feat"] == "accordion"
    assert types["feat-checkbox"] == "checkbox"
    assert feature.value is True and feature.accordion.open is True


def test_a_slider_whose_range_is_still_empty_is_built_with_that_range():
    # Gradio 3 idiom (mov2mov's frame picker): an empty range, widened later with .update(maximum=n).
    with gr.Blocks() as demo:
        frame = gr.Slider(label="Frame number", minimum=0, maximum=0, step=1, elem_id="frame")
        positional = gr.Slider(5, 5, label="five")
    assert (frame.minimum, frame.maximum, positional.minimum, positional.maximum) == (0, 0, 5, 5)
    props = {c["props"].get("elem_id"): c["props"] for c in demo.get_config_file()["components"]}
    assert props["frame"]["maximum"] == 0


def test_entering_the_open_tabs_adds_a_tab_there_and_building_goes_on_where_it_was():
    # mov2mov's way of putting its tab next to img2img: when the img2img tab is made, enter its parent (the open
    # gr.Tabs), make a tab, exit. The page's tabs must still close normally afterwards.
    from gradio.blocks import BlockContext
    original_init = BlockContext.__init__

    def hooked_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if self.elem_id == "tab_img2img":
            self.parent.__enter__()
            with gr.Tab("mov2mov", elem_id="tab_mov2mov"):
                gr.Textbox(elem_id="mov2mov_prompt")
            self.parent.__exit__()

    BlockContext.__init__ = hooked_init
    try:
        with gr.Blocks() as demo:
            with gr.Tabs() as tabs:
                with gr.Tab("txt2img", elem_id="tab_txt2img"):
                    gr.Textbox(elem_id="txt2img_prompt")
                with gr.Tab("img2img", elem_id="tab_img2img"):
                    gr.Textbox(elem_id="img2img_prompt")
                with gr.Tab("Extras", elem_id="tab_extras"):
                    gr.Textbox()
            footer = gr.HTML("footer")
    finally:
        BlockContext.__init__ = original_init
    assert [t.elem_id for t in tabs.children] == ["tab_txt2img", "tab_img2img", "tab_mov2mov", "tab_extras"]
    assert tabs.parent is demo and footer.parent is demo
    demo.get_config_file()


def test_an_extension_dropdown_passes_a_value_outside_its_choices_as_gradio_3_did(tmp_path, monkeypatch):
    # Infinity Grid starts its axis modes at "", which is not a choice; Gradio 6 refused the whole Generate.
    from tests.extension_helpers import ExtensionSandbox
    box = ExtensionSandbox(str(tmp_path / "extensions"), monkeypatch, include_root_scripts=False)
    box.add("modes", {"scripts/modes.py": """
        import gradio as gr
        def make():
            return gr.Dropdown(value="", choices=[" ", "Steps"], label="Axis mode"), gr.Dropdown(choices=["a", "b"], type="index")
    """})
    box.load()
    try:
        from modules import script_loading
        module = next(m for p, m in script_loading.loaded_scripts.items() if p.endswith("modes.py"))
        with gr.Blocks():
            mode, by_index = module.make()
            ours = gr.Dropdown(choices=["x"], value="x")
        assert mode.preprocess("") == "" and mode.preprocess("Steps") == "Steps"
        assert by_index.preprocess("zzz") is None and by_index.preprocess("b") == 1
        with pytest.raises(gr.Error):
            ours.preprocess("not a choice")  # the page's own dropdowns keep Gradio 6's check
    finally:
        box.close()


STUB_PROBE = '''
import sys
import modules
import gradio
import gradio.component_meta
sys.path.insert(0, sys.argv[1])
import my_component
print(gradio.component_meta.create_or_modify_pyi.__module__)
'''


def test_gradio_writes_no_pyi_stubs_in_a_fresh_process(tmp_path):
    """Gradio rewrote a .pyi stub for each of its ~80 components at every import (3.5 s of every start) and beside
    any file subclassing a component; importing `modules` first switches that off."""
    import subprocess
    import sys
    (tmp_path / "my_component.py").write_text("import gradio as gr\n\nclass Wide(gr.Button):\n    pass\n")
    result = subprocess.run([sys.executable, "-c", STUB_PROBE, str(tmp_path)], capture_output=True, text=True, timeout=120,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "modules.gradio_stub_writer"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".pyc" and p.name != "__pycache__") == ["my_component.py"]


MATPLOTLIB_PROBE = '''
import os, sys
os.environ.pop("MPLBACKEND", None)
import webui.app
from gradio.utils import MatplotlibBackendMananger
with MatplotlibBackendMananger():  # what Gradio does around every queued event
    pass
print(os.environ["MPLBACKEND"], "matplotlib.pyplot" in sys.modules)
'''


def test_gradio_events_do_not_make_matplotlib_try_every_gui_toolkit():
    """Around each queued event Gradio asks matplotlib for its backend; on "auto" that imported pyplot and probed
    GUI toolkits (1.3 s of the first Generate). The web UI picks Agg before anything imports matplotlib."""
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", MATPLOTLIB_PROBE], capture_output=True, text=True, timeout=120,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["Agg", "False"]
