"""Mask geometry for inpainting: the "only masked" crop box and the "fill" masked content (A1111: modules.masking)."""
import numpy as np
from PIL import Image, ImageFilter, ImageOps


def get_crop_region_v2(mask, pad=0):
    """Box (x1, y1, x2, y2) around the mask's non-zero pixels grown by `pad` and clamped; None for an empty mask."""
    mask = mask if isinstance(mask, Image.Image) else Image.fromarray(np.asarray(mask).astype(np.uint8))
    box = mask.getbbox()
    if box is None:
        return None
    x1, y1, x2, y2 = box
    pad = max(int(pad or 0), 0)
    return max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, mask.width), min(y2 + pad, mask.height)


def get_crop_region(mask, pad=0):
    """Like get_crop_region_v2, but an empty mask gives the whole image instead of None (older callers expect a box)."""
    region = get_crop_region_v2(mask, pad)
    if region is not None:
        return region
    if isinstance(mask, Image.Image):
        return 0, 0, mask.width, mask.height
    h, w = np.asarray(mask).shape[:2]
    return 0, 0, w, h


def _grow_span(lo, hi, wanted, limit):
    """Grow [lo, hi) around its centre to `wanted` length, shifted back inside [0, limit)."""
    diff = int(wanted - (hi - lo))
    lo -= diff // 2
    hi += diff - diff // 2
    if hi >= limit:
        shift = hi - limit
        hi -= shift
        lo -= shift
    if lo < 0:
        hi -= lo
        lo = 0
    if hi >= limit:
        hi = limit
    return lo, hi


def expand_crop_region(crop_region, processing_width, processing_height, image_width, image_height):
    """Grow the crop box to the processing aspect ratio (centred, kept inside the image), so no stretching happens."""
    x1, y1, x2, y2 = crop_region
    ratio_crop = (x2 - x1) / (y2 - y1)
    ratio_processing = processing_width / processing_height
    if ratio_crop > ratio_processing:
        y1, y2 = _grow_span(y1, y2, (x2 - x1) / ratio_processing, image_height)
    else:
        x1, x2 = _grow_span(x1, x2, (y2 - y1) * ratio_processing, image_width)
    return x1, y1, x2, y2


# (blur radius, times composited): coarse colour first, finer detail of the surroundings on top.
_FILL_PASSES = [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]


def fill(image, mask):
    """'fill' masked content: the masked area painted with progressively less blurred copies of its surroundings."""
    keep = ImageOps.invert(mask.convert("L"))
    if keep.size != image.size:
        keep = keep.resize(image.size)
    surroundings = Image.new("RGBa", image.size)
    surroundings.paste(image.convert("RGBA").convert("RGBa"), mask=keep)
    result = Image.new("RGBA", image.size)
    for radius, repeats in _FILL_PASSES:
        blurred = surroundings.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            result.alpha_composite(blurred)
    return result.convert("RGB")
