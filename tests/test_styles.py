"""Prompt styles (styles.csv): applying, {prompt} placement, saving/loading, and recovering styles from infotext."""
import os

import pytest

from modules import shared, styles
from modules.styles import PromptStyle, StyleDatabase


def test_merge_without_placeholder_appends():
    assert styles.merge_prompts("masterpiece", "a cat") == "a cat, masterpiece"
    assert styles.merge_prompts("masterpiece", "") == "masterpiece"
    assert styles.merge_prompts("", "a cat") == "a cat"
    assert styles.merge_prompts("  masterpiece ", " a cat  ") == "a cat, masterpiece"


def test_merge_with_placeholder_puts_prompt_there():
    assert styles.merge_prompts("photo of {prompt}, 4k", "a cat") == "photo of a cat, 4k"
    assert styles.merge_prompts("{prompt} and {prompt}", "x") == "x and x"


def test_styles_apply_in_order():
    assert styles.apply_styles_to_prompt("cat", ["photo of {prompt}", "4k"]) == "photo of cat, 4k"
    assert styles.apply_styles_to_prompt("cat", ["4k", "photo of {prompt}"]) == "photo of cat, 4k"
    assert styles.apply_styles_to_prompt("cat", ["4k", "{prompt}, sharp"]) == "cat, 4k, sharp"


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_load_apply_and_unknown_names(tmp_path):
    path = write_csv(tmp_path / "styles.csv",
                     'name,prompt,negative_prompt\n'
                     'Photo,"photo of {prompt}, 35mm","drawing, cartoon"\n'
                     'Sharp,sharp,blurry\n')
    db = StyleDatabase([str(path)])
    assert list(db.styles) == ["Photo", "Sharp"]
    assert db.styles["Photo"] == PromptStyle("Photo", "photo of {prompt}, 35mm", "drawing, cartoon", str(path))
    assert db.apply_styles_to_prompt("a cat", ["Photo", "Sharp"]) == "photo of a cat, 35mm, sharp"
    assert db.apply_negative_styles_to_prompt("ugly", ["Photo", "Sharp"]) == "ugly, drawing, cartoon, blurry"
    assert db.apply_styles_to_prompt("a cat", ["No such style"]) == "a cat"


def test_old_text_column_and_missing_file(tmp_path):
    path = write_csv(tmp_path / "old.csv", "name,text\nOld,vintage\n")
    db = StyleDatabase([str(path), str(tmp_path / "missing.csv")])
    assert db.styles["Old"].prompt == "vintage" and db.styles["Old"].negative_prompt == ""


def test_wildcard_paths(tmp_path):
    write_csv(tmp_path / "a-styles.csv", "name,prompt,negative_prompt\nA,a,\n")
    write_csv(tmp_path / "b-styles.csv", "name,prompt,negative_prompt\nB,b,\n")
    db = StyleDatabase([str(tmp_path / "*-styles.csv")])
    assert sorted(db.styles) == ["A", "B"]


def test_broken_file_is_reported_and_others_load(tmp_path, capsys):
    good = write_csv(tmp_path / "good.csv", "name,prompt,negative_prompt\nGood,g,\n")
    broken = tmp_path / "broken.csv"
    broken.mkdir()  # a folder where a file should be: cannot be read
    db = StyleDatabase([str(broken), str(good)])
    assert list(db.styles) == ["Good"]
    assert "broken.csv" in capsys.readouterr().err


def test_save_and_reload_round_trip(tmp_path):
    path = tmp_path / "data" / "styles.csv"
    db = StyleDatabase([str(path)])
    assert db.styles == {}
    db.save_style("Quoted", 'a "quoted", {prompt}\nsecond line', "neg, ative")
    db.save_style("Plain", "plain", "")
    assert path.exists() and not os.path.exists(str(path) + ".tmp")

    again = StyleDatabase([str(path)])
    assert again.styles["Quoted"].prompt == 'a "quoted", {prompt}\nsecond line'
    assert again.styles["Quoted"].negative_prompt == "neg, ative"
    assert list(again.styles) == ["Quoted", "Plain"]

    again.delete_style("Plain")
    assert list(StyleDatabase([str(path)]).styles) == ["Quoted"]

    with pytest.raises(ValueError, match="name"):
        again.save_style("  ", "x", "y")


def test_saving_keeps_styles_in_their_own_files(tmp_path):
    first = write_csv(tmp_path / "first.csv", "name,prompt,negative_prompt\nOne,1,\n")
    second = write_csv(tmp_path / "second.csv", "name,prompt,negative_prompt\nTwo,2,\n")
    db = StyleDatabase([str(first), str(second)])
    db.save_style("Two", "2 changed", "")
    db.save_style("Three", "3", "")  # new styles go to the first (default) file
    assert sorted(StyleDatabase([str(first)]).styles) == ["One", "Three"]
    assert StyleDatabase([str(second)]).styles["Two"].prompt == "2 changed"


def test_default_file_is_in_the_data_dir():
    db = StyleDatabase()
    assert db.default_path == os.path.join(shared.data_path, "styles.csv")


def test_extract_styles_from_prompt_recovers_applied_styles(tmp_path):
    path = write_csv(tmp_path / "styles.csv",
                     'name,prompt,negative_prompt\n'
                     'Photo,"photo of {prompt}, 35mm","drawing"\n'
                     'Sharp,sharp,blurry\n'
                     'Unused,unused,\n')
    db = StyleDatabase([str(path)])
    prompt = db.apply_styles_to_prompt("a cat", ["Photo", "Sharp"])
    negative = db.apply_negative_styles_to_prompt("ugly", ["Photo", "Sharp"])
    found, clean_prompt, clean_negative = db.extract_styles_from_prompt(prompt, negative)
    assert found == ["Photo", "Sharp"]
    assert (clean_prompt, clean_negative) == ("a cat", "ugly")

    # a style is only recognised when both its prompt and negative prompt are present
    found, clean_prompt, _ = db.extract_styles_from_prompt("a cat, sharp", "ugly")
    assert found == [] and clean_prompt == "a cat, sharp"


def test_extract_style_text():
    assert styles.extract_style_text_from_prompt("4k", "a cat, 4k") == (True, "a cat")
    assert styles.extract_style_text_from_prompt("photo of {prompt}!", "photo of a cat!") == (True, "a cat")
    assert styles.extract_style_text_from_prompt("photo of {prompt}!", "a cat") == (False, "a cat")
