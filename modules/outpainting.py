"""Helpers of the outpainting scripts: how far each side grows, and the noise that seeds the new area."""
import math

import numpy as np

DIRECTIONS = ["left", "right", "up", "down"]


def expansion(width, height, pixels, directions, multiple=64):
    """Pixels added on (left, right, up, down): `pixels` on each chosen side, grown so the new size is a multiple of
    `multiple` (A1111 keeps outpainted canvases on a 64-pixel grid), split between opposite sides."""
    pixels = int(pixels)
    if pixels <= 0:
        raise ValueError(f"Pixels to expand must be more than 0, got {pixels}")
    unknown = [d for d in directions if d not in DIRECTIONS]
    if unknown:
        raise ValueError(f"Outpainting direction must be among {DIRECTIONS}, got {unknown}")
    if not directions:
        raise ValueError("Choose at least one outpainting direction.")
    left, right, up, down = (pixels if d in directions else 0 for d in DIRECTIONS)
    target_w = math.ceil((width + left + right) / multiple) * multiple
    target_h = math.ceil((height + up + down) / multiple) * multiple
    if left or right:
        left = left * (target_w - width) // (left + right)
        right = target_w - width - left if right else 0
    if up or down:
        up = up * (target_h - height) // (up + down)
        down = target_h - height - up if down else 0
    return left, right, up, down


def _match_histogram(values, reference):
    from modules.color_correction import match_histogram
    return match_histogram(values, reference)


def matched_noise(image, fill_mask, falloff=1.0, color_variation=0.05, seed=0):
    """The image with its `fill_mask` area (1 = new) replaced by noise shaped like the known area.

    The noise has the known area's frequency content (its spectrum raised to `falloff`: lower keeps more fine
    detail) and its colour distribution (histogram matched per channel); `color_variation` (0-1) is how much the
    channels vary independently. Float arrays (H, W, 3) in [0, 1]; deterministic for a seed."""
    image = np.asarray(image, dtype=np.float64)
    fill = np.asarray(fill_mask, dtype=np.float64)
    if fill.ndim == 2:
        fill = fill[..., None].repeat(3, axis=-1)
    known = fill < 0.5
    if not known.any() or known.all():
        return image.copy()
    rng = np.random.default_rng(seed)
    white = rng.random(image.shape)
    grey = white.mean(axis=-1, keepdims=True)
    white = grey * (1.0 - color_variation) + white * color_variation

    window = image * (1.0 - fill)
    spectrum = np.abs(np.fft.fft2(window, axes=(0, 1)))
    envelope = spectrum ** float(falloff) if falloff != 0 else np.ones_like(spectrum)
    envelope /= max(envelope.max(), 1e-12)
    shaped = np.real(np.fft.ifft2(np.fft.fft2(white, axes=(0, 1)) * envelope, axes=(0, 1)))

    result = image.copy()
    for c in range(3):
        region = ~known[..., c]
        reference = image[..., c][known[..., c]]
        result[..., c][region] = _match_histogram(shaped[..., c][region], reference)
    return np.clip(result * fill + image * (1.0 - fill), 0.0, 1.0)


def mask_with_hole(size, box):
    """'L' mask: white (repaint) everywhere except the kept box."""
    from PIL import Image
    mask = Image.new("L", size, 255)
    mask.paste(0, box)
    return mask
