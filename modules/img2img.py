"""img2img's engine entry point (A1111: modules.img2img): a request in, a Processed out; and what the img2img tab
does with its inputs, without any UI: the init image and mask of each mode (img2img, sketch, inpaint, inpaint
sketch, inpaint upload) and batch processing of a folder.

The web UI's Generate button, the REST API and job workers all come to `img2img(request)` through the job queue."""
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from modules import processing_request, shared
from modules.shared import opts, state

# Mode indexes, as A1111's hidden `img2img_selected_tab` number.
MODE_IMG2IMG, MODE_SKETCH, MODE_INPAINT, MODE_INPAINT_SKETCH, MODE_INPAINT_UPLOAD, MODE_BATCH = range(6)
MODE_NAMES = ["img2img", "Sketch", "Inpaint", "Inpaint sketch", "Inpaint upload", "Batch"]
INPAINT_MODES = (MODE_INPAINT, MODE_INPAINT_SKETCH, MODE_INPAINT_UPLOAD)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")


def _as_image(value):
    if value is None:
        return None
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, np.ndarray):
        return Image.fromarray(value)
    if isinstance(value, (str, os.PathLike)):
        return Image.open(value)
    raise TypeError(f"expected an image, got {type(value).__name__}")


def editor_parts(value):
    """(background, layers, composite) of an image editor value ({'background', 'layers', 'composite'})."""
    if value is None:
        return None, [], None
    if not isinstance(value, dict):
        image = _as_image(value)
        return image, [], image
    layers = [_as_image(x) for x in (value.get("layers") or []) if x is not None]
    return _as_image(value.get("background")), layers, _as_image(value.get("composite"))


def mask_from_layers(layers, size):
    """White where any brush layer is painted (alpha above half, A1111's rounding), black elsewhere; 'L' of `size`."""
    mask = Image.new("L", size, 0)
    for layer in layers:
        layer = layer.convert("RGBA")
        alpha = layer.getchannel("A")
        if alpha.size != size:
            alpha = alpha.resize(size, resample=Image.BILINEAR)
        mask = Image.fromarray(np.maximum(np.asarray(mask), np.asarray(alpha)))
    return mask.point(lambda x: 255 if x > 128 else 0)


def _require(image, what):
    if image is None:
        raise ValueError(f"No {what}: upload or paste an image first.")
    return image


def image_and_mask(mode, init_img=None, sketch=None, init_img_with_mask=None, inpaint_color_sketch=None,
                   init_img_inpaint=None, init_mask_inpaint=None, mask_blur=4, mask_alpha=0):
    """The (init image, mask or None) that mode `mode` of the tab gives, as A1111's img2img()."""
    if mode == MODE_IMG2IMG:
        image = _require(_as_image(init_img), "init image")
        return ImageOps.exif_transpose(image), None
    if mode == MODE_SKETCH:
        background, _, composite = editor_parts(sketch)
        return _require(composite or background, "image to sketch on"), None
    if mode == MODE_INPAINT:
        background, layers, _ = editor_parts(init_img_with_mask)
        background = _require(background, "image to inpaint")
        return background, mask_from_layers(layers, background.size)
    if mode == MODE_INPAINT_SKETCH:
        background, _, composite = editor_parts(inpaint_color_sketch)
        original = _require(background, "image to inpaint")
        image = (composite or original).convert("RGB")
        if image.size != original.size:
            image = image.resize(original.size)
        original_rgb = original.convert("RGB")
        changed = np.any(np.asarray(image) != np.asarray(original_rgb), axis=-1)
        mask = Image.fromarray(changed.astype(np.uint8) * 255, mode="L")
        mask = ImageEnhance.Brightness(mask).enhance(1 - float(mask_alpha or 0) / 100)
        blur = ImageFilter.GaussianBlur(float(mask_blur or 0))
        image = Image.composite(image.filter(blur), original_rgb, mask.filter(blur))
        return image, mask
    if mode == MODE_INPAINT_UPLOAD:
        image = _require(_as_image(init_img_inpaint), "image to inpaint")
        mask = _as_image(init_mask_inpaint)
        if mask is None:
            raise ValueError("No mask: upload a mask image (white = the area to repaint).")
        return ImageOps.exif_transpose(image), mask
    raise ValueError(f"unknown img2img mode {mode!r}; expected 0-{len(MODE_NAMES) - 1}")


def scaled_size(image, scale_by):
    """"Resize by": the image's size times `scale_by`, rounded down to a multiple of 8 (the latent's grid)."""
    return scaled_dimensions(image.width, image.height, scale_by)


def scaled_dimensions(width, height, scale_by):
    scale_by = float(scale_by)
    if scale_by <= 0:
        raise ValueError(f"Scale must be more than 0, got {scale_by}")
    return max(8, int(float(width) * scale_by) // 8 * 8), max(8, int(float(height) * scale_by) // 8 * 8)


def list_images(folder):
    """Image files of a folder and its subfolders, sorted."""
    found = []
    for root, _, files in os.walk(folder):
        for name in files:
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(os.path.join(root, name))
    return sorted(found)


def find_mask(image_path, mask_files):
    """The mask for an image: the only file of the mask folder, else the one with the image's name (any extension)."""
    if len(mask_files) == 1:
        return mask_files[0]
    stem = Path(image_path).stem
    for mask_path in mask_files:
        if Path(mask_path).stem == stem:
            return mask_path
    return None


def _png_info_params(image_path, png_info_dir):
    from modules import images, infotext_utils
    source = os.path.join(png_info_dir, os.path.basename(image_path)) if png_info_dir else image_path
    try:
        info, _ = images.read_info_from_image(Image.open(source))
    except OSError:
        return {}
    return infotext_utils.parse_generation_parameters(info or "")


def _apply_png_info(p, params, props, prompt, negative_prompt):
    props = props or []
    if "Prompt" in props:
        p.prompt = " ".join(x for x in (prompt, params.get("Prompt", "")) if x)
    if "Negative prompt" in props:
        p.negative_prompt = " ".join(x for x in (negative_prompt, params.get("Negative prompt", "")) if x)
    for key, field, cast in (("Seed", "seed", int), ("CFG scale", "cfg_scale", float), ("Steps", "steps", int)):
        if key in props and key in params:
            setattr(p, field, cast(params[key]))
    if "Sampler" in props and "Sampler" in params:
        p.sampler_name = params["Sampler"]
    if "Model hash" in props and "Model hash" in params:
        p.override_settings["sd_model_checkpoint"] = params["Model hash"]


def process_batch(p, input_dir, output_dir, inpaint_mask_dir, args, to_scale=False, scale_by=1.0, use_png_info=False,
                  png_info_props=None, png_info_dir=None, input_files=None):
    """img2img every image of `input_dir` (or `input_files`), with masks from `inpaint_mask_dir` when given.

    Results go to `output_dir` named after each input (or to the usual img2img folder); returns a Processed with
    the first `img2img_batch_show_results_limit` images, or None when nothing was processed."""
    from modules import processing, scripts
    if input_files:
        images_list = [str(getattr(f, "name", f)) for f in input_files]
    else:
        if not input_dir:
            raise ValueError("Input directory not selected: type the folder of the images to process.")
        if not os.path.isdir(input_dir):
            raise ValueError(f"Input directory {input_dir!r} does not exist.")
        images_list = list_images(input_dir)
    if not images_list:
        raise ValueError(f"No images (.png, .jpg, .jpeg, .webp, .tif, .tiff) found in {input_dir or 'the uploaded files'}.")
    mask_files = []
    if inpaint_mask_dir:
        if not os.path.isdir(inpaint_mask_dir):
            raise ValueError(f"Inpaint batch mask directory {inpaint_mask_dir!r} does not exist.")
        mask_files = list_images(inpaint_mask_dir)
        if not mask_files:
            raise ValueError(f"No mask images found in {inpaint_mask_dir}.")
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)

    print(f"Will process {len(images_list)} images, creating {p.n_iter * p.batch_size} new images for each.")
    state.job_count = len(images_list) * p.n_iter
    prompt, negative_prompt = p.prompt, p.negative_prompt
    seed, cfg_scale, steps, sampler_name = p.seed, p.cfg_scale, p.steps, p.sampler_name
    override_settings = dict(p.override_settings)
    batch_images, infotexts, skipped = [], [], []
    limit = opts.img2img_batch_show_results_limit

    for i, image_path in enumerate(images_list):
        state.job = f"{i + 1} out of {len(images_list)}"
        if state.skipped:
            state.skipped = False
        if state.interrupted or state.stopping_generation:
            break
        try:
            img = ImageOps.exif_transpose(Image.open(image_path))
            img.load()
        except OSError as e:
            print(f"Error processing {image_path}: not an image ({e})")
            skipped.append(image_path)
            continue
        if to_scale:
            p.width, p.height = scaled_size(img, scale_by)
        p.init_images = [img] * p.batch_size

        p.image_mask = None
        if mask_files:
            mask_path = find_mask(image_path, mask_files)
            if mask_path is None:
                print(f"Skipping {image_path}: no mask named {Path(image_path).stem}.* in {inpaint_mask_dir}")
                skipped.append(image_path)
                continue
            p.image_mask = Image.open(mask_path)

        p.prompt, p.negative_prompt = prompt, negative_prompt
        p.seed, p.cfg_scale, p.steps, p.sampler_name = seed, cfg_scale, steps, sampler_name
        p.override_settings = dict(override_settings)
        if use_png_info:
            _apply_png_info(p, _png_info_params(image_path, png_info_dir), png_info_props, prompt, negative_prompt)

        if output_dir:
            p.outpath_samples = output_dir
            p.override_settings["save_to_dirs"] = False
            p.override_settings["save_images_replace_action"] = "Add number suffix"
            stem = Path(image_path).stem
            p.override_settings["samples_filename_pattern"] = f"{stem}-[generation_number]" if p.n_iter > 1 or p.batch_size > 1 else stem

        processed = None
        runner = p.scripts if isinstance(p.scripts, scripts.ScriptRunner) else None
        if runner is not None and args:
            processed = runner.run(p, *args)
        if processed is None:
            processed = processing.process_images(p)
        first = processed.index_of_first_image
        for image, text in zip(processed.images[first:], processed.infotexts[first:]):
            if limit < 0 or len(batch_images) < limit:
                batch_images.append(image)
                infotexts.append(text)

    skipped_note = f"Skipped {len(skipped)} image(s): " + ", ".join(os.path.basename(x) for x in skipped)
    if not batch_images:
        if skipped:  # every file was skipped: said in the result, not the console only
            raise ValueError(f"No image was processed. {skipped_note}")
        return None
    result = processing.Processed(p, batch_images, p.seed, infotexts[0], infotexts=infotexts)
    if skipped:
        result.comments += skipped_note + "\n"
    return result


def img2img_create_processing(request: dict):
    """The StableDiffusionProcessingImg2Img for a request (normalised here), scripts attached."""
    return processing_request.create_processing("img2img", processing_request.normalize("img2img", request))


def img2img(request: dict):
    """Generate; returns the Processed. `request["batch"]`, when present, runs the tab's folder/upload batch:
    {"source": "dir" | "upload", "files", "input_dir", "output_dir", "inpaint_mask_dir", "use_png_info",
    "png_info_props", "png_info_dir", "to_scale", "scale_by"}."""
    processing_request.ensure_model()
    request = dict(request)
    batch = request.pop("batch", None)
    p = img2img_create_processing(request)
    if batch is None:
        return processing_request.run_processing(p)
    try:
        return _run_batch(p, batch)
    finally:
        p.close()


def _run_batch(p, batch):
    from modules import processing
    from_dir = batch.get("source") == "dir"
    if from_dir and shared.cmd_opts.hide_ui_dir_config:
        raise ValueError("Batch from a directory is disabled by --hide-ui-dir-config.")
    if not from_dir and not batch.get("files"):
        raise ValueError("No files to process: upload images in Batch → Upload.")
    processed = process_batch(
        p, batch.get("input_dir") if from_dir else None, batch.get("output_dir") if from_dir else None,
        batch.get("inpaint_mask_dir") if from_dir else None, p.script_args, to_scale=batch.get("to_scale", False),
        scale_by=batch.get("scale_by", 1.0), use_png_info=batch.get("use_png_info", False),
        png_info_props=batch.get("png_info_props"), png_info_dir=batch.get("png_info_dir"),
        input_files=None if from_dir else batch["files"])
    return processed if processed is not None else processing.Processed(p, [], p.seed, "")
