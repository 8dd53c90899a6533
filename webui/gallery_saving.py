"""The results column's 💾 Save and 🗃️ Zip (A1111's ui_common.save_files): the gallery's images with their infotexts
into the `outdir_save` folder (default log/images), a row in its log.csv, and optionally a zip of them; the files
are then offered for download under the gallery."""
import csv
import json
import os
import types
import zipfile

import gradio as gr

from modules import images, infotext_utils, shared
from webui.extension_ui_helpers import plaintext_to_html

LOG_FIELDS = ["prompt", "seed", "width", "height", "sampler", "cfgs", "steps", "filename", "negative_prompt",
              "sd_model_name", "sd_model_hash"]


def save_files(js_data, images_data, do_make_zip, index):
    """Save the gallery's images (the selected one only, with `save_selected_only`) with their infotext into the
    `outdir_save` folder, add a row to its log.csv, optionally zip them; returns (file list update, message)."""
    data = json.loads(js_data)
    p = types.SimpleNamespace(**data)  # FilenameGenerator reads the job's fields as attributes
    path = shared.data_relative(shared.opts.outdir_save)
    infotexts = data.get("infotexts") or []
    first_image = data.get("index_of_first_image", 0)
    start = 0
    if index is not None and index > -1 and shared.opts.save_selected_only and index >= first_image:
        images_data = [images_data[index]]
        start = index
    os.makedirs(path, exist_ok=True)

    filenames, fullfns, parsed = [], [], []
    for image_index, filedata in enumerate(images_data, start):
        image = infotext_utils.image_from_url_text(filedata)
        info = infotexts[image_index] if image_index < len(infotexts) else ""
        parsed.append(infotext_utils.parse_generation_parameters(info))
        p.batch_index = image_index - 1
        fullfn, txt_fullfn = images.save_image(image, path, "", seed=data["all_seeds"][-1], prompt=data["all_prompts"][-1],
                                               extension=shared.opts.samples_format, info=info,
                                               grid=image_index < first_image, p=p,
                                               save_to_dirs=shared.opts.use_save_to_dirs_for_ui)
        filenames.append(os.path.relpath(fullfn, path))
        fullfns.append(fullfn)
        if txt_fullfn:
            filenames.append(os.path.basename(txt_fullfn))
            fullfns.append(txt_fullfn)
    if not filenames:
        return gr.update(), plaintext_to_html("Nothing to save.")

    if shared.opts.save_write_log_csv:
        log_path = os.path.join(path, "log.csv")
        with open(log_path, "a", encoding="utf8", newline="") as file:
            writer = csv.writer(file)
            if file.tell() == 0:
                writer.writerow(LOG_FIELDS)
            first = parsed[0]
            writer.writerow([first.get("Prompt", ""), first.get("Seed", ""), data.get("width"), data.get("height"),
                             data.get("sampler_name"), data.get("cfg_scale"), data.get("steps"), filenames[0],
                             first.get("Negative prompt", ""), data.get("sd_model_name"), data.get("sd_model_hash")])

    if do_make_zip:
        zip_path = os.path.join(path, f"{os.path.splitext(os.path.basename(fullfns[0]))[0]}.zip")
        with zipfile.ZipFile(zip_path, "w") as archive:
            for name, full in zip(filenames, fullfns):
                archive.write(full, name)
        fullfns.insert(0, zip_path)
    return gr.update(value=fullfns, visible=True), plaintext_to_html(f"Saved: {filenames[0]}")


def save_gallery(generation_info, gallery, do_make_zip, selected_index):
    """The 💾/🗃️ buttons' action: save_files with what the panel holds; a failure is told under the gallery."""
    if not gallery or not generation_info:
        return gr.update(), plaintext_to_html("Nothing to save: generate an image first.")
    if selected_index is not None and not 0 <= selected_index < len(gallery):
        selected_index = None
    try:
        return save_files(generation_info, gallery, do_make_zip, -1 if selected_index is None else selected_index)
    except (OSError, ValueError, KeyError) as e:
        folder = shared.data_relative(shared.opts.outdir_save)
        return gr.update(), plaintext_to_html(f"Could not save into {folder}: {e}")


def bind_save_buttons(panel):
    """Wire an OutputPanel's 💾 Save and 🗃️ Zip to its gallery, generation info and selected image."""
    inputs = [panel.generation_info, panel.gallery, panel.selected_index]
    for button, zip_too in ((panel.save_button, False), (panel.zip_button, True)):
        button.click(fn=lambda info, gallery, index, zip_too=zip_too: save_gallery(info, gallery, zip_too, index),
                     inputs=inputs, outputs=[panel.download_files, panel.log], show_progress="hidden")
