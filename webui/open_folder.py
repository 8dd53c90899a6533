"""The results column's 📂: opens the tab's output folder in the file manager of the machine the web UI runs on
(A1111's open_folder; hidden with --hide-ui-dir-config). The outcome is told under the gallery."""
import os
import platform
import subprocess

from modules import shared
from webui.extension_ui_helpers import plaintext_to_html

OUTDIR_SETTINGS = {"txt2img": "outdir_txt2img_samples", "img2img": "outdir_img2img_samples",
                   "extras": "outdir_extras_samples"}


def output_folder(tabname, outdir=None):
    """Where the tab's images go: "Output directory for images" when set, else the tab's own folder."""
    folder = shared.opts.outdir_samples or outdir or getattr(shared.opts, OUTDIR_SETTINGS.get(tabname, "outdir_txt2img_samples"))
    return shared.data_relative(folder)


def open_folder(folder):
    """Open `folder` in the system's file manager; returns the message to show."""
    if not os.path.isdir(folder):
        return plaintext_to_html(f"The folder {folder} does not exist yet: it is made when the first image is saved.")
    system = platform.system()
    command = {"Windows": None, "Darwin": ["open", folder]}.get(system, ["xdg-open", folder])
    try:
        if command is None:
            os.startfile(folder)  # noqa: S606  (Windows only)
        else:
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as e:
        return plaintext_to_html(f"Could not open {folder} on this machine ({e}); the images are there.")
    return plaintext_to_html(f"Opened {folder} on the machine running the web UI.")
