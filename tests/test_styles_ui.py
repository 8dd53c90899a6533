"""Saving a style from the prompt row: the current prompts go to styles.csv and the Styles dropdown lists it."""
import gradio as gr
import pytest

from modules import shared, styles
from webui import toprow


@pytest.fixture
def style_db(tmp_path):
    saved = shared.prompt_styles
    shared.prompt_styles = styles.StyleDatabase([str(tmp_path / "styles.csv")])
    yield shared.prompt_styles
    shared.prompt_styles = saved


def test_save_style_writes_the_current_prompts(style_db, tmp_path):
    dropdown, name_box = toprow.save_style(" cinematic ", "{prompt}, film grain", "cartoon", [])
    assert dropdown["choices"] == ["cinematic"] and dropdown["value"] == []
    assert name_box == ""
    reloaded = styles.StyleDatabase([str(tmp_path / "styles.csv")])
    assert reloaded.styles["cinematic"].prompt == "{prompt}, film grain"
    assert reloaded.apply_styles_to_prompt("a cat", ["cinematic"]) == "a cat, film grain"
    assert reloaded.apply_negative_styles_to_prompt("blurry", ["cinematic"]) == "blurry, cartoon"

    # saving under the same name replaces the style; selected styles that still exist stay selected
    dropdown, _ = toprow.save_style("cinematic", "grainy", "", ["cinematic", "gone"])
    assert dropdown["value"] == ["cinematic"]
    assert styles.StyleDatabase([str(tmp_path / "styles.csv")]).styles["cinematic"].prompt == "grainy"


def test_save_style_without_a_name_changes_nothing(style_db, tmp_path):
    dropdown, name_box = toprow.save_style("   ", "a", "b", [])
    assert "choices" not in dropdown and "value" not in name_box
    assert not (tmp_path / "styles.csv").exists()


def test_prompt_row_has_the_style_edit_row(style_db):
    style_db.save_style("one", "x", "y")
    with gr.Blocks():
        row = toprow.Toprow(is_img2img=False)
    assert row.ui_styles.dropdown.choices[0][0] == "one"
    assert row.ui_styles.style_name is not None and row.ui_styles.save_button is not None
