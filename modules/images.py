"""Saving, reading and resizing images with their generation parameters (A1111: modules.images).

File naming lives in images_naming.py and grids in images_grid.py; both are re-exported here because
extensions import these names from modules.images.
"""
import io
import json
import os

import piexif
import piexif.helper
from PIL import Image, ImageOps, PngImagePlugin

from modules import errors, script_callbacks, shared
from modules.images_grid import (  # noqa: F401  (public A1111 names)
    Grid, GridAnnotation, combine_grid, draw_grid_annotations, draw_prompt_matrix, get_font, image_grid, split_grid,
)
from modules.images_naming import (  # noqa: F401  (public A1111 names)
    FilenameGenerator, NOTHING_AND_SKIP_PREVIOUS_TEXT, get_next_sequence_number, invalid_filename_chars,
    invalid_filename_postfix, invalid_filename_prefix, re_nonletters, sanitize_filename_part,
)

LANCZOS = Image.Resampling.LANCZOS
NEAREST = Image.Resampling.NEAREST

# image.info keys that are format details, not text a user wrote
IGNORED_INFO_KEYS = {
    "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "exif", "loop", "background", "timestamp",
    "duration", "progressive", "progression", "icc_profile", "chromaticity", "photoshop",
}


# --- resizing ------------------------------------------------------------------------------------------------------

def _find_upscaler(name):
    for upscaler in shared.sd_upscalers:
        if upscaler.name == name:
            return upscaler
    return None


def resize_image(resize_mode, im, width, height, upscaler_name=None):
    """Resize `im` to width x height.

    resize_mode 0: stretch; 1: scale to cover and centre-crop; 2: scale to fit, centre, and fill the borders by
    stretching the image's edge rows/columns; 3 (latent upscale, done on latents by img2img) resizes like 0 here.
    Enlarging uses `upscaler_name` (or the `upscaler_for_img2img` setting) and then Lanczos to the exact size;
    with no upscaler set, Lanczos alone.
    """
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise ValueError(f"resize_image: target size must be positive, got {width}x{height}")
    if im.width <= 0 or im.height <= 0:
        raise ValueError(f"resize_image: source image is empty ({im.width}x{im.height})")
    upscaler_name = upscaler_name or shared.opts.upscaler_for_img2img

    def resize(im, w, h):
        w, h = max(1, int(w)), max(1, int(h))
        if upscaler_name is None or upscaler_name == "None" or im.mode == "L":
            return im.resize((w, h), resample=LANCZOS)
        scale = max(w / im.width, h / im.height)
        if scale > 1.0:
            upscaler = _find_upscaler(upscaler_name)
            if upscaler is None:
                fallback = shared.sd_upscalers[0].name if shared.sd_upscalers else "Lanczos"
                print(f"could not find upscaler named {upscaler_name or '<empty string>'}, using {fallback} as a fallback")
                upscaler = shared.sd_upscalers[0] if shared.sd_upscalers else None
            if upscaler is not None:
                im = upscaler.scaler.upscale(im, scale, upscaler.data_path)
        if im.width != w or im.height != h:
            im = im.resize((w, h), resample=LANCZOS)
        return im

    if resize_mode in (0, 3):
        return resize(im, width, height)

    ratio = width / height
    src_ratio = im.width / im.height
    if resize_mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
        resized = resize(im, src_w, src_h)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
        return res

    if resize_mode != 2:
        raise ValueError(f"resize_image: unknown resize mode {resize_mode!r}; expected 0 (just resize), 1 (crop and resize), 2 (resize and fill) or 3 (latent)")
    src_w = width if ratio < src_ratio else im.width * height // im.height
    src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = resize(im, src_w, src_h)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if ratio < src_ratio:
        fill_height = height // 2 - src_h // 2
        if fill_height > 0:
            res.paste(resized.resize((width, fill_height), box=(0, 0, width, 0)), box=(0, 0))
            res.paste(resized.resize((width, fill_height), box=(0, resized.height, width, resized.height)), box=(0, fill_height + src_h))
    elif ratio > src_ratio:
        fill_width = width // 2 - src_w // 2
        if fill_width > 0:
            res.paste(resized.resize((fill_width, height), box=(0, 0, 0, height)), box=(0, 0))
            res.paste(resized.resize((fill_width, height), box=(resized.width, 0, resized.width, height)), box=(fill_width + src_w, 0))
    return res


def flatten(img, bgcolor):
    """Composite a transparent image over `bgcolor`; the result is RGB."""
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, bgcolor)
        background.paste(img, mask=img)
        img = background
    return img.convert("RGB")


# --- saving --------------------------------------------------------------------------------------------------------

def saver_format(extension: str):
    """PIL's format name for saving files with this extension ("png", ".jpg", ...), or None when PIL cannot save
    them."""
    image_format = Image.registered_extensions().get("." + str(extension).lower().lstrip("."))
    return image_format if image_format in Image.SAVE else None


def save_image_with_geninfo(image, geninfo, filename, extension=None, existing_pnginfo=None, pnginfo_section_name="parameters"):
    """Write `image` to `filename` with the infotext: PNG text chunk, EXIF UserComment for JPEG/WebP/AVIF, GIF comment."""
    if extension is None:
        extension = os.path.splitext(filename)[1]
    extension = extension.lower()
    image_format = saver_format(extension)
    if image_format is None:
        raise ValueError(f"cannot save image {filename}: unknown file format {extension!r}")

    if extension == ".png":
        existing_pnginfo = dict(existing_pnginfo or {})
        pnginfo_data = None
        if shared.opts.enable_pnginfo:
            if geninfo is not None:
                existing_pnginfo[pnginfo_section_name] = geninfo
            pnginfo_data = PngImagePlugin.PngInfo()
            for k, v in existing_pnginfo.items():
                if v is not None:
                    pnginfo_data.add_text(k, str(v))
        image.save(filename, format=image_format, pnginfo=pnginfo_data)
    elif extension in (".jpg", ".jpeg", ".webp"):
        if image.mode in ("RGBA", "P", "LA"):
            image = image.convert("RGB")
        elif image.mode == "I;16":
            image = image.point(lambda p: p * 0.0038910505836576).convert("RGB" if extension == ".webp" else "L")
        image.save(filename, format=image_format, quality=shared.opts.jpeg_quality, lossless=shared.opts.webp_lossless)
        if shared.opts.enable_pnginfo and geninfo is not None:
            exif_bytes = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(geninfo or "", encoding="unicode")}})
            piexif.insert(exif_bytes, filename)
    elif extension == ".gif":
        image.save(filename, format=image_format, comment=geninfo or "")
    elif extension == ".avif":  # the infotext goes in EXIF UserComment, as for JPEG (A1111)
        exif_bytes = None
        if shared.opts.enable_pnginfo and geninfo is not None:
            exif_bytes = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(geninfo or "", encoding="unicode")}})
        image.save(filename, format=image_format, quality=shared.opts.jpeg_quality, exif=exif_bytes)
    else:
        image.save(filename, format=image_format, quality=shared.opts.jpeg_quality)


def _atomic_save(image, info, filename_without_extension, extension, pnginfo, pnginfo_section_name):
    """Write to a temporary name, then move into place: a crash never leaves a half-written image."""
    temp_file_path = f"{filename_without_extension}.tmp"
    try:
        save_image_with_geninfo(image, info, temp_file_path, extension, existing_pnginfo=pnginfo, pnginfo_section_name=pnginfo_section_name)
    except BaseException:
        if os.path.exists(temp_file_path):
            os.remove(temp_file_path)
        raise
    filename = filename_without_extension + extension
    if shared.opts.save_images_replace_action != "Replace":
        n = 0
        while os.path.exists(filename):
            n += 1
            filename = f"{filename_without_extension}-{n}{extension}"
    os.replace(temp_file_path, filename)
    return filename


# None: save_image writes the file here. A Ray worker sets a function that records the call instead, for the front to
# save the image in its own folders (modules/distributed/captured_saves.py).
save_image_redirect = None


def save_image(image, path, basename, seed=None, prompt=None, extension="png", info=None, short_filename=False,
               no_prompt=False, grid=False, pnginfo_section_name="parameters", p=None, existing_info=None,
               forced_filename=None, suffix="", save_to_dirs=None):
    """Save an image under `path` with A1111's naming and its infotext; returns (fullfn, txt_fullfn).

    Names: `<path>/<directories_filename_pattern>/NNNNN-<samples_filename_pattern>.<ext>`; the pattern defaults to
    `[seed]` when saving into sub-folders and `[seed]-[prompt_spaces]` otherwise; the 5-digit counter is the next
    free number in the folder (4 digits after a `basename-`).
    """
    if image is None:
        raise ValueError("save_image: no image given")
    if save_image_redirect is not None:
        return save_image_redirect(image, path, basename, seed=seed, prompt=prompt, extension=extension, info=info,
                                   short_filename=short_filename, no_prompt=no_prompt, grid=grid,
                                   pnginfo_section_name=pnginfo_section_name, p=p, existing_info=existing_info,
                                   forced_filename=forced_filename, suffix=suffix, save_to_dirs=save_to_dirs)
    namegen = FilenameGenerator(p, seed, prompt, image, basename=basename)
    extension = (extension or "png").lstrip(".")

    # JPEG and WebP cannot hold images this large; PNG can
    if ((image.height > 65535 or image.width > 65535) and extension.lower() in ("jpg", "jpeg")) or \
            ((image.height > 16383 or image.width > 16383) and extension.lower() == "webp"):
        print("Image dimensions too large; saving as PNG")
        extension = "png"

    if save_to_dirs is None:
        save_to_dirs = (grid and shared.opts.grid_save_to_dirs) or (not grid and shared.opts.save_to_dirs and not no_prompt)
    if save_to_dirs:
        dirname = namegen.apply(shared.opts.directories_filename_pattern or "[prompt_words]").lstrip(" ").rstrip("\\ /")
        path = os.path.join(path, dirname)
    os.makedirs(path, exist_ok=True)

    if forced_filename is None:
        if short_filename or seed is None:
            file_decoration = ""
        elif shared.opts.save_to_dirs:
            file_decoration = shared.opts.samples_filename_pattern or "[seed]"
        else:
            file_decoration = shared.opts.samples_filename_pattern or "[seed]-[prompt_spaces]"
        file_decoration = namegen.apply(file_decoration) + suffix
        add_number = shared.opts.save_images_add_number or file_decoration == ""
        if file_decoration != "" and add_number:
            file_decoration = f"-{file_decoration}"
        if add_number:
            basecount = get_next_sequence_number(path, basename)
            fullfn = None
            for i in range(500):
                fn = f"{basecount + i:05}" if basename == "" else f"{basename}-{basecount + i:04}"
                fullfn = os.path.join(path, f"{fn}{file_decoration}.{extension}")
                if not os.path.exists(fullfn):
                    break
        else:
            fullfn = os.path.join(path, f"{file_decoration}.{extension}")
    else:
        fullfn = os.path.join(path, f"{forced_filename}.{extension}")

    pnginfo = dict(existing_info or {})
    if info is not None:
        pnginfo[pnginfo_section_name] = info

    params = script_callbacks.ImageSaveParams(image, p, fullfn, pnginfo)
    script_callbacks.before_image_saved_callback(params)
    image = params.image
    info = params.pnginfo.get(pnginfo_section_name, None)

    fullfn_without_extension, extension = os.path.splitext(params.filename)
    if hasattr(os, "statvfs"):
        max_name_len = os.statvfs(os.path.dirname(params.filename) or ".").f_namemax
        stem = os.path.basename(fullfn_without_extension)[:max_name_len - max(4, len(extension))]
        fullfn_without_extension = os.path.join(os.path.dirname(fullfn_without_extension), stem)
        params.filename = fullfn_without_extension + extension
    fullfn = _atomic_save(image, info, fullfn_without_extension, extension, params.pnginfo, pnginfo_section_name)
    params.filename = fullfn
    try:
        image.already_saved_as = fullfn
    except AttributeError:
        pass

    oversize = image.width > shared.opts.target_side_length or image.height > shared.opts.target_side_length
    if shared.opts.export_for_4chan and extension.lower() != ".jpg" and \
            (oversize or os.stat(fullfn).st_size > shared.opts.img_downscale_threshold * 1024 * 1024):
        ratio = image.width / image.height
        resize_to = None
        if oversize and ratio > 1:
            resize_to = round(shared.opts.target_side_length), round(image.height * shared.opts.target_side_length / image.width)
        elif oversize:
            resize_to = round(image.width * shared.opts.target_side_length / image.height), round(shared.opts.target_side_length)
        small = image.resize(resize_to, LANCZOS) if resize_to is not None else image
        try:
            _atomic_save(small, info, fullfn_without_extension, ".jpg", params.pnginfo, pnginfo_section_name)
        except Exception as e:
            errors.display(e, "saving image as downscaled JPG")

    txt_fullfn = None
    if shared.opts.save_txt and info is not None:
        txt_fullfn = f"{fullfn_without_extension}.txt"
        with open(txt_fullfn, "w", encoding="utf8") as file:
            file.write(f"{info}\n")

    script_callbacks.image_saved_callback(params)
    return fullfn, txt_fullfn


# --- reading -------------------------------------------------------------------------------------------------------

def _novelai_to_infotext(image, items):
    json_info = json.loads(items["Comment"])
    from modules import sd_samplers  # here, not at the top: the sampler registry loads the model engine
    sampler = sd_samplers.samplers_map.get(json_info.get("sampler", ""), "Euler a")
    return (f"{items['Description']}\n"
            f"Negative prompt: {json_info['uc']}\n"
            f"Steps: {json_info['steps']}, Sampler: {sampler}, CFG scale: {json_info['scale']}, Seed: {json_info['seed']}, "
            f"Size: {image.width}x{image.height}, Clip skip: 2, ENSD: 31337")


def read_info_from_image(image: Image.Image):
    """Return (infotext or None, other text items) from an image: PNG `parameters` chunk, EXIF UserComment
    (JPEG/WebP/AVIF), GIF comment; NovelAI metadata is converted to A1111's format."""
    items = dict(image.info or {})
    geninfo = items.pop("parameters", None)

    if "exif" in items:
        exif_data = items["exif"]
        try:
            exif = piexif.load(exif_data)
        except Exception:
            exif = None
        exif_comment = (exif or {}).get("Exif", {}).get(piexif.ExifIFD.UserComment, b"")
        try:
            exif_comment = piexif.helper.UserComment.load(exif_comment)
        except ValueError:
            exif_comment = exif_comment.decode("utf8", errors="ignore")
        if exif_comment:
            geninfo = exif_comment
    elif "comment" in items:  # GIF
        comment = items["comment"]
        geninfo = comment.decode("utf8", errors="ignore") if isinstance(comment, bytes) else comment

    for field in IGNORED_INFO_KEYS:
        items.pop(field, None)

    if items.get("Software", None) == "NovelAI":
        try:
            geninfo = _novelai_to_infotext(image, items)
        except Exception:
            errors.report("Error parsing NovelAI image generation parameters", exc_info=True)
    return geninfo, items


def image_data(data):
    """Bytes of an uploaded file -> (infotext, None) for an image, or (text, None) for a UTF-8 text file."""
    try:
        image = read(io.BytesIO(data))
        textinfo, _ = read_info_from_image(image)
        return textinfo, None
    except Exception:
        pass
    try:
        text = data.decode("utf8")
        assert len(text) < 10000
        return text, None
    except Exception:
        pass
    return "", None


def read(fp, **kwargs):
    """Open an image, apply its EXIF orientation, and make palette images RGB(A)."""
    image = Image.open(fp, **kwargs)
    image = fix_image(image)
    return image


def fix_image(image: Image.Image):
    if image is None:
        return None
    info = image.info
    try:
        image = ImageOps.exif_transpose(image)
        image.info.update({k: v for k, v in info.items() if k not in image.info})
    except Exception:
        pass
    if image.mode == "P":
        converted = image.convert("RGBA")
        converted.info = image.info
        image = converted
    return image

