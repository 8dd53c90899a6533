"""modules.ui_tempdir (A1111's name): which files the page may be sent, and the folder of temporary pictures."""
import os
import types

from PIL import Image, PngImagePlugin

from modules import shared, ui_tempdir


def test_registered_files_may_be_sent_to_the_page(tmp_path):
    page = types.SimpleNamespace(allowed_paths=[])
    picture = tmp_path / "out" / "a.png"
    assert not ui_tempdir.check_tmp_file(page, str(picture))
    ui_tempdir.register_tmp_file(page, str(picture))
    ui_tempdir.register_tmp_file(page, str(picture))
    assert page.allowed_paths == [str(picture)] and ui_tempdir.check_tmp_file(page, str(picture))
    assert not ui_tempdir.check_tmp_file(page, str(tmp_path / "out" / "b.png"))


def test_gradio_temp_paths_are_recognised(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-uploads"))
    assert ui_tempdir.is_gradio_temp_path(str(tmp_path / "gradio-uploads" / "abc" / "image.png"))
    assert not ui_tempdir.is_gradio_temp_path(str(tmp_path / "outputs" / "image.png"))
    monkeypatch.setitem(shared.opts.data, "temp_dir", str(tmp_path / "mine"))
    assert ui_tempdir.is_gradio_temp_path(str(tmp_path / "mine" / "x.png"))


def test_pictures_for_the_page_keep_their_infotext_and_the_temp_dir_is_cleaned(tmp_path, monkeypatch):
    monkeypatch.setitem(shared.opts.data, "temp_dir", str(tmp_path / "temp"))
    image = Image.new("RGB", (8, 8), "red")
    image.info["parameters"] = "a red square\nSteps: 3"
    saved = ui_tempdir.save_pil_to_file(image)
    assert os.path.dirname(saved.name) == str(tmp_path / "temp")
    assert Image.open(saved.name).info["parameters"] == "a red square\nSteps: 3"
    already = tmp_path / "outputs" / "00001.png"
    already.parent.mkdir()
    image.save(already, pnginfo=PngImagePlugin.PngInfo())
    image.already_saved_as = str(already)
    assert ui_tempdir.save_pil_to_file(image).name.startswith(f"{already}?")  # the saved file itself, not a copy
    (tmp_path / "temp" / "keep.txt").write_text("not a picture")
    ui_tempdir.cleanup_tmpdr()
    assert os.listdir(tmp_path / "temp") == ["keep.txt"]
