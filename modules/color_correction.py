"""img2img colour correction: match a result's colours to the init image (A1111's `img2img_color_correction`).

A1111 matches the histograms of each LAB channel to the init image's, then keeps the result's own luminosity
(a "luminosity" blend of the uncorrected result over the corrected one). Same steps here, in numpy.
"""
import numpy as np
from PIL import Image

# sRGB (D65) <-> CIE XYZ
_RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                        [0.212671, 0.715160, 0.072169],
                        [0.019334, 0.119193, 0.950227]], dtype=np.float64)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = np.array([0.950456, 1.0, 1.088754])


def rgb_to_lab(rgb_uint8):
    rgb = rgb_uint8.astype(np.float64) / 255.0
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def lab_to_rgb(lab):
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > 0.206893, f ** 3, (f - 16.0 / 116.0) / 7.787) * _WHITE
    linear = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, 1.0)
    rgb = np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, linear * 12.92)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def match_histogram(source, reference):
    """Map `source` values so their distribution matches `reference`'s (both 1-D)."""
    src_values, src_index, src_counts = np.unique(source, return_inverse=True, return_counts=True)
    ref_values, ref_counts = np.unique(reference, return_counts=True)
    src_quantiles = np.cumsum(src_counts) / source.size
    ref_quantiles = np.cumsum(ref_counts) / reference.size
    return np.interp(src_quantiles, ref_quantiles, ref_values)[src_index]


def _luminosity(rgb):
    return rgb @ np.array([0.3, 0.59, 0.11])


def blend_luminosity(base, top):
    """W3C "luminosity" blend: hue and saturation of `base`, luminosity of `top` (float RGB in [0, 1])."""
    color = base + (_luminosity(top) - _luminosity(base))[..., None]
    lum = _luminosity(color)[..., None]
    low = color.min(axis=-1, keepdims=True)
    high = color.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        color = np.where(low < 0, lum + (color - lum) * lum / np.maximum(lum - low, 1e-12), color)
        color = np.where(high > 1, lum + (color - lum) * (1 - lum) / np.maximum(high - lum, 1e-12), color)
    return np.clip(color, 0.0, 1.0)


def setup_color_correction(image):
    """The correction target: the init image in LAB."""
    return rgb_to_lab(np.asarray(image.convert("RGB")))


def apply_color_correction(correction, original_image):
    """The result with the init image's colour distribution and its own luminosity."""
    original = np.asarray(original_image.convert("RGB"))
    lab = rgb_to_lab(original)
    matched = np.empty_like(lab)
    for c in range(3):
        matched[..., c] = match_histogram(lab[..., c].ravel(), np.asarray(correction)[..., c].ravel()).reshape(lab.shape[:2])
    corrected = lab_to_rgb(matched).astype(np.float64) / 255.0
    blended = blend_luminosity(corrected, original.astype(np.float64) / 255.0)
    return Image.fromarray(np.round(blended * 255.0).astype(np.uint8))
