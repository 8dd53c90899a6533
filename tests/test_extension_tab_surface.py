"""A1111's pieces for building a generation tab, which extensions with their own tab (mov2mov) reuse: the prompt
row (modules.ui_toprow.Toprow), the layout's categories, and a ScriptRunner laid out category by category."""
import gradio as gr
import pytest

from modules import gradio_compat, scripts, shared, shared_items
from tests.extension_helpers import ExtensionSandbox

gradio_compat.apply()

ALWAYS_ON = """
import gradio as gr
from modules import scripts

class Plain(scripts.Script):
    def title(self):
        return "Plain"
    def show(self, is_img2img):
        return scripts.AlwaysVisible
    def ui(self, is_img2img):
        return [gr.Checkbox(label="plain on")]

class InSeedSection(scripts.Script):
    section = "seed"
    def title(self):
        return "Seed helper"
    def show(self, is_img2img):
        return scripts.AlwaysVisible
    def ui(self, is_img2img):
        return [gr.Number(label="offset"), gr.Checkbox(label="seed helper on")]

class MadeEarly(scripts.Script):
    # Neutral Prompt's shape: its components are made when it is told its tab, placed later by ui().
    @property
    def is_img2img(self):
        return self._is_img2img
    @is_img2img.setter
    def is_img2img(self, value):
        self._is_img2img = value
        self.slider = gr.Slider(label="made early", minimum=0, maximum=1)
    def title(self):
        return "Made early"
    def show(self, is_img2img):
        return scripts.AlwaysVisible
    def ui(self, is_img2img):
        with gr.Accordion("Made early"):
            self.slider.render()
        return [self.slider]

class Selectable(scripts.Script):
    def title(self):
        return "Selectable"
    def ui(self, is_img2img):
        return [gr.Textbox(label="selectable text")]
"""


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    box = ExtensionSandbox(str(tmp_path / "extensions"), monkeypatch, include_root_scripts=False)
    box.add("layout-ext", {"scripts/layout.py": ALWAYS_ON})
    box.load()
    yield box
    box.close()


def layout(runner):
    return {s.title(): (s.args_from, s.args_to) for s in runner.scripts}


def test_a_runner_built_category_by_category_lines_up_with_the_tabs_runner(sandbox):
    from webui import script_runner_ui
    assert sandbox.reports.messages == []
    with gr.Blocks():
        tab_inputs = script_runner_ui.create_script_ui(scripts.scripts_img2img, is_img2img=True)
        # mov2mov's tab: its own runner, laid out as A1111's img2img tab, whose values are sent to img2img's scripts.
        own = scripts.ScriptRunner()
        own.initialize_scripts(is_img2img=True)
        own.prepare_ui()
        for category in shared_items.ordered_ui_categories():
            if category == "scripts":
                own_inputs = own.setup_ui()
            own.setup_ui_for_section(category)
    assert layout(own) == layout(scripts.scripts_img2img)
    assert [getattr(c, "label", None) for c in own_inputs[1:]] == [getattr(c, "label", None) for c in tab_inputs[1:]]
    # The category order: the seed section's script before the default section's, the dropdown first of all.
    labels = [getattr(c, "label", None) for c in tab_inputs]
    assert labels.index("offset") < labels.index("plain on") < labels.index("selectable text")
    assert tab_inputs[0].label == "Script" and sandbox.reports.messages == []  # "made early" placed once per page


def test_ordered_categories_follow_the_reorder_setting_and_list_script_sections(sandbox, monkeypatch):
    default = shared_items.ordered_ui_categories()
    assert default[:3] == ["prompt", "image", "inpaint"] and default[-1] == "scripts"
    assert "seed" in default and default.count("seed") == 1
    monkeypatch.setitem(shared.opts.data, "ui_reorder_list", ["seed", "prompt"])
    moved = shared_items.ordered_ui_categories()
    assert moved[:3] == ["seed", "image", "prompt"]  # A1111's ranking: named ones odd, the rest by position


def test_toprow_takes_a1111s_arguments_and_its_compact_layout():
    from modules.ui_toprow import Toprow
    with gr.Blocks() as demo:
        classic = Toprow(is_img2img=True, is_compact=False, id_part="mov2mov")
        with gr.Row():
            with gr.Column() as settings_column:
                compact = Toprow(is_img2img=False, is_compact=True, id_part="compact")
                compact.create_inline_toprow_prompts()
            with gr.Column() as results_column:
                compact.create_inline_toprow_image()
    assert classic.prompt.elem_id == "mov2mov_prompt" and classic.submit.elem_id == "mov2mov_generate"
    assert classic.ui_styles.dropdown.elem_id == "mov2mov_styles" and classic.negative_prompt.value == ""
    ids = {c["props"].get("elem_id") for c in demo.get_config_file()["components"]}
    assert {"mov2mov_prompt", "mov2mov_neg_prompt", "mov2mov_interrupt", "mov2mov_skip", "compact_prompt", "compact_generate"} <= ids

    def holds(column, block):
        return any(child is block or holds(child, block) for child in getattr(column, "children", []))

    # Compact: the prompts inside the settings column, the Generate box above the results.
    assert holds(settings_column, compact.prompt) and not holds(settings_column, compact.submit)
    assert holds(results_column, compact.submit)
