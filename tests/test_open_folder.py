"""The results column's 📂 opens the tab's output folder on the machine running the web UI."""
import subprocess

import gradio as gr

from modules import shared
from webui import open_folder, output_panel


def test_it_opens_the_tabs_folder_and_says_so(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(subprocess, "Popen", lambda command, **kwargs: opened.append(command))
    monkeypatch.setattr(open_folder.platform, "system", lambda: "Linux")
    monkeypatch.setitem(shared.opts.data, "outdir_samples", "")
    monkeypatch.setitem(shared.opts.data, "outdir_img2img_samples", str(tmp_path / "img2img-images"))
    folder = open_folder.output_folder("img2img")
    assert folder == str(tmp_path / "img2img-images")
    assert "does not exist yet" in open_folder.open_folder(folder) and opened == []
    (tmp_path / "img2img-images").mkdir()
    assert "Opened" in open_folder.open_folder(folder) and opened == [["xdg-open", folder]]
    monkeypatch.setitem(shared.opts.data, "outdir_samples", str(tmp_path / "all"))  # "Output directory for images"
    assert open_folder.output_folder("img2img") == str(tmp_path / "all")


def test_a_machine_without_a_file_manager_gets_a_message(tmp_path, monkeypatch):
    def missing(command, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", command[0])
    monkeypatch.setattr(subprocess, "Popen", missing)
    monkeypatch.setattr(open_folder.platform, "system", lambda: "Linux")
    assert "Could not open" in open_folder.open_folder(str(tmp_path))


def test_the_button_is_hidden_with_hide_ui_dir_config(monkeypatch):
    monkeypatch.setattr(shared.cmd_opts, "hide_ui_dir_config", True)
    with gr.Blocks():
        panel = output_panel.OutputPanel("txt2img")
    assert panel.open_folder_button.visible is False
