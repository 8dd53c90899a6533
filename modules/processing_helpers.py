"""Conversions between latents, image tensors and PIL images, and the mask helpers img2img needs.

Re-exported by modules.processing under A1111's names, since scripts import them from there.
"""
import hashlib

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

from modules import color_correction, rng


def create_random_tensors(shape, seeds, subseeds=None, subseed_strength=0.0, seed_resize_from_h=0, seed_resize_from_w=0, p=None):
    """A1111's helper: the first noise draw for `seeds` (one generator per image)."""
    g = rng.ImageRNG(shape, seeds, subseeds=subseeds, subseed_strength=subseed_strength,
                     seed_resize_from_h=seed_resize_from_h, seed_resize_from_w=seed_resize_from_w)
    return g.next()


def image_to_tensor(image: Image.Image):
    """PIL RGB -> float tensor (3, H, W) in [0, 1]."""
    array = np.array(image.convert("RGB")).astype(np.float32) / 255.0
    return torch.from_numpy(np.moveaxis(array, 2, 0))


def tensor_to_image(sample):
    """Float tensor (3, H, W) in [0, 1] -> PIL RGB."""
    array = 255.0 * np.moveaxis(sample.float().cpu().numpy(), 0, 2)
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))


def mask_to_pil(mask, name="mask"):
    """A mask given as a PIL image or an array -> PIL image; anything else is a clear error naming the input."""
    if isinstance(mask, Image.Image):
        return mask
    if isinstance(mask, np.ndarray):
        array = mask
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        elif array.dtype != np.uint8:
            array = np.clip(array * (255.0 if array.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    raise TypeError(f"{name} must be a PIL image or a numpy array, not {type(mask).__name__}")


def create_binary_mask(image, round=True):
    """A mask image -> 'L' mask (white = repaint). An RGBA image with real transparency uses its alpha channel
    (what a brush layer gives), rounded to 0/255 when `round`; other images are converted to greyscale as they are."""
    image = mask_to_pil(image)
    if image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode == "RGBA" and image.getextrema()[-1] != (255, 255):
        image = image.getchannel("A")
        if round:
            image = image.point(lambda x: 255 if x > 128 else 0)
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _to_8bit_greyscale(image)
    return image.convert("L")


def _to_8bit_greyscale(image):
    """16-bit / 32-bit / float greyscale -> 'L', keeping the image's brightness (not stretching its range)."""
    array = np.asarray(image).astype(np.float64)
    top = array.max(initial=0)
    if image.mode == "F" and top <= 1.0:
        array = array * 255.0
    elif top > 255:
        array = array / 257.0  # 16-bit range 0..65535 -> 0..255
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8), mode="L")


def gaussian_kernel_size(sigma):
    return 2 * int(2.5 * sigma + 0.5) + 1


def gaussian_blur_mask(mask: Image.Image, sigma_x: float, sigma_y: float) -> Image.Image:
    """Separable Gaussian blur, x then y, kernel size 2*int(2.5*sigma+0.5)+1 and mirrored borders (as A1111's cv2 call)."""
    from scipy.ndimage import correlate1d
    array = np.asarray(mask.convert("L")).astype(np.float64)
    for axis, sigma in ((1, sigma_x), (0, sigma_y)):
        if not sigma or sigma <= 0:
            continue
        k = gaussian_kernel_size(sigma)
        xs = np.arange(k, dtype=np.float64) - (k - 1) / 2
        kernel = np.exp(-(xs ** 2) / (2.0 * sigma * sigma))
        array = correlate1d(array, kernel / kernel.sum(), axis=axis, mode="mirror")
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8), mode="L")


def uncrop(image, dest_size, paste_loc):
    """Put a result made from a crop back at its place (x, y, w, h) on a transparent canvas of `dest_size`."""
    x, y, w, h = paste_loc
    canvas = Image.new("RGBA", dest_size)
    if image.size != (w, h):
        image = image.resize((w, h), resample=Image.LANCZOS)
    canvas.paste(image, (x, y))
    return canvas


def apply_overlay(image, paste_loc, overlay):
    """Paste a result back into its crop box and put the untouched original pixels (the overlay) over it.

    Returns (composited image, result before compositing)."""
    if overlay is None:
        return image, image.copy()
    if paste_loc is not None:
        image = uncrop(image, (overlay.width, overlay.height), paste_loc)
    elif image.size != overlay.size:
        # a size that is not a multiple of 8 decodes a few pixels smaller: bring it to the overlay's size
        image = image.resize(overlay.size, resample=Image.LANCZOS)
    original_denoised_image = image.copy()
    image = image.convert("RGBA")
    image.alpha_composite(overlay)
    return image.convert("RGB"), original_denoised_image


def setup_color_correction(image):
    """The init image's colour distribution (LAB), to match results to it."""
    return color_correction.setup_color_correction(image)


def apply_color_correction(correction, original_image):
    """The result with the init image's colours and its own luminosity."""
    return color_correction.apply_color_correction(correction, original_image)


def image_hash(image: Image.Image) -> str:
    return hashlib.md5(image.tobytes()).hexdigest()


def flatten_to_rgb(image: Image.Image, background="#ffffff", name="image") -> Image.Image:
    """Any mode (RGBA, LA, P, L, 16-bit, float, CMYK) -> RGB, with transparency filled by `background`."""
    if not isinstance(image, Image.Image):
        image = mask_to_pil(image, name)
    if image.width <= 0 or image.height <= 0:
        raise ValueError(f"{name} is empty ({image.width}x{image.height})")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = _to_8bit_greyscale(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background_image = Image.new("RGBA", image.size, background)
        background_image.alpha_composite(image)
        return background_image.convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as e:
        raise ValueError(f"{name} has colour mode {image.mode!r}, which cannot be converted to RGB: {e}") from e


def invert_mask(mask: Image.Image) -> Image.Image:
    return ImageOps.invert(mask.convert("L"))


def blur_filter(image, radius):
    return image.filter(ImageFilter.GaussianBlur(radius))
