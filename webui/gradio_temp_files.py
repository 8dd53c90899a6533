"""Which files the page may be sent, and the folder of temporary pictures (A1111: modules.ui_tempdir).

Gradio serves a file only from its upload folder, the current folder, the system's temporary folder or the
launch's `allowed_paths`; `register_tmp_file` adds a file (or folder) to those, `check_tmp_file` asks.
`save_pil_to_file` writes a picture for the page, into the `temp_dir` setting's folder when it is set;
that folder's pictures are deleted at start with `clean_temp_dir_at_start` (webui/app.py).
"""
import os
import tempfile
from collections import namedtuple
from pathlib import Path

from gradio import utils as gradio_utils
from PIL import PngImagePlugin

from modules import shared

Savedfile = namedtuple("Savedfile", ["name"])


def register_tmp_file(gradio, filename):
    """Let the page `gradio` (the Blocks) be sent the file `filename`."""
    allowed = getattr(gradio, "allowed_paths", None)
    if allowed is None:
        return
    path = os.path.abspath(filename)
    if path not in allowed:
        allowed.append(path)


def check_tmp_file(gradio, filename):
    """Whether the page may be sent `filename` because it was registered (or lies in a registered folder)."""
    path = Path(filename).resolve()
    return any(gradio_utils.is_in_or_equal(path, Path(allowed).resolve()) for allowed in getattr(gradio, "allowed_paths", None) or [])


def is_gradio_temp_path(path):
    """Whether `path` lies in a folder of temporary files: the `temp_dir` setting or Gradio's upload folder."""
    path = Path(path).resolve()
    folders = [shared.opts.temp_dir, os.environ.get("GRADIO_TEMP_DIR"), gradio_utils.get_upload_folder(),
               os.path.join(tempfile.gettempdir(), "gradio")]
    return any(folder and gradio_utils.is_in_or_equal(path, Path(folder).resolve()) for folder in folders)


def save_pil_to_file(pil_image, dir=None, format="png"):
    """A picture for the page: the file it was already saved as, else a new temporary PNG (in the `temp_dir`
    setting's folder when set) that keeps its text chunks (the infotext). Returns an object with `.name`."""
    already_saved_as = getattr(pil_image, "already_saved_as", None)
    if already_saved_as and os.path.isfile(already_saved_as):
        if shared.demo is not None:
            register_tmp_file(shared.demo, already_saved_as)
        return Savedfile(f"{already_saved_as}?{os.path.getmtime(already_saved_as)}")
    if shared.opts.temp_dir:
        dir = shared.opts.temp_dir
        os.makedirs(dir, exist_ok=True)
    metadata = PngImagePlugin.PngInfo()
    use_metadata = False
    for key, value in pil_image.info.items():
        if isinstance(key, str) and isinstance(value, str):
            metadata.add_text(key, value)
            use_metadata = True
    file_obj = tempfile.NamedTemporaryFile(delete=False, suffix=".png", dir=dir)
    with file_obj:
        pil_image.save(file_obj, format="PNG", pnginfo=metadata if use_metadata else None)
    return file_obj


def on_tmpdir_changed():
    """The `temp_dir` setting changed: create the folder and let the page be sent its files."""
    if not shared.opts.temp_dir or shared.demo is None:
        return
    os.makedirs(shared.opts.temp_dir, exist_ok=True)
    register_tmp_file(shared.demo, shared.opts.temp_dir)


def cleanup_tmpdr():
    """Delete the PNG files in the `temp_dir` setting's folder (only there: never Gradio's or the system's)."""
    temp_dir = shared.opts.temp_dir
    if not temp_dir or not os.path.isdir(temp_dir):
        return
    for root, _, files in os.walk(temp_dir, topdown=False):
        for name in files:
            if os.path.splitext(name)[1] == ".png":
                os.remove(os.path.join(root, name))
