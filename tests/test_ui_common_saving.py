"""modules.ui_common's save_files (A1111's 💾/🗃️ action that extensions wire to their own galleries) and
update_generation_info, as an extension imports them."""
import csv
import json
import os
import zipfile

from PIL import Image

from modules import images, shared


def job_json(infotexts):
    return json.dumps({"all_seeds": [11, 12], "all_prompts": ["a red circle", "a red circle"], "infotexts": infotexts,
                       "index_of_first_image": 0, "width": 64, "height": 64, "sampler_name": "Euler", "cfg_scale": 7,
                       "steps": 3, "sd_model_name": "tiny", "sd_model_hash": "abc", "seed": 11, "prompt": "a red circle"})


def test_save_files_writes_the_selected_image_with_its_infotext_a_log_row_and_a_zip(tmp_path, monkeypatch):
    from modules.ui_common import plaintext_to_html, save_files  # the import that failed in the wild
    monkeypatch.setitem(shared.opts.data, "outdir_save", str(tmp_path / "saved"))
    monkeypatch.setitem(shared.opts.data, "samples_format", "png")
    infotexts = ["a red circle\nSteps: 3, Sampler: Euler, Seed: 11", "a red circle\nSteps: 3, Sampler: Euler, Seed: 12"]
    gallery = [(Image.new("RGB", (64, 64), "red"), None), (Image.new("RGB", (64, 64), "blue"), None)]

    files, message = save_files(job_json(infotexts), gallery, False, 1)
    saved = [f for f in files["value"] if f.endswith(".png")]
    assert len(saved) == 1 and files["visible"] is True
    assert images.read(saved[0]).getpixel((0, 0)) == (0, 0, 255)  # the selected (second) image
    assert images.read_info_from_image(images.read(saved[0]))[0] == infotexts[1]
    assert message == plaintext_to_html(f"Saved: {os.path.basename(saved[0])}")
    with open(tmp_path / "saved" / "log.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0][:3] == ["prompt", "seed", "width"] and rows[1][:2] == ["a red circle", "12"]

    monkeypatch.setitem(shared.opts.data, "save_selected_only", False)
    files, _ = save_files(job_json(infotexts), gallery, True, 0)
    archive = files["value"][0]
    assert archive.endswith(".zip")
    with zipfile.ZipFile(archive) as zipped:
        assert len([n for n in zipped.namelist() if n.endswith(".png")]) == 2


def test_update_generation_info_shows_the_selected_images_infotext():
    from modules.ui_common import update_generation_info
    info = job_json(["first", "second"])
    assert update_generation_info(info, "<p>old</p>", 1)[0] == "<p>second</p>"
    assert update_generation_info(info, "<p>old</p>", 5)[0] == "<p>old</p>"
    assert update_generation_info("not json", "<p>old</p>", 0)[0] == "<p>old</p>"
