"""Conversions between latents, image tensors and PIL images, and the mask helpers img2img needs.

Re-exported by modules.processing under A1111's names, since scripts import them from there.
"""
import hashlib

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

from modules import devices, shared


def create_random_tensors(shape, seeds, subseeds=None, subseed_strength=0.0, seed_resize_from_h=0, seed_resize_from_w=0, p=None):
    """A1111's helper: the first noise draw for `seeds` (one generator per image)."""
    from modules import rng
    g = rng.ImageRNG(shape, seeds, subseeds=subseeds, subseed_strength=subseed_strength,
                     seed_resize_from_h=seed_resize_from_h, seed_resize_from_w=seed_resize_from_w)
    return g.next()


def decode_first_stage(model, x):
    x = x.to(devices.dtype_vae)
    return model.decode_first_stage(x)


def decode_latent_batch(model, batch, target_device=None, check_for_nans=False):
    """Decode latents one at a time (bounded memory), checking for NaNs as A1111 does."""
    samples = []
    for i in range(batch.shape[0]):
        sample = decode_first_stage(model, batch[i:i + 1])[0]
        if check_for_nans:
            devices.test_for_nans(sample, "vae")
        if target_device is not None:
            sample = sample.to(target_device)
        samples.append(sample)
    return samples


def samples_to_image_tensors(model, samples):
    """Latents -> image tensors in [0, 1]."""
    decoded = torch.stack(decode_latent_batch(model, samples, check_for_nans=True)).float()
    return torch.clamp((decoded + 1.0) / 2.0, min=0.0, max=1.0)


def images_tensor_to_samples(image, approximation=None, model=None):
    """Image tensor in [0, 1], shape (B, 3, H, W) -> latents, through the VAE encoder."""
    model = model or shared.sd_model
    image = image.to(shared.device, dtype=devices.dtype_vae)
    image = image * 2 - 1
    dist = model.encode_first_stage(image)
    return model.get_first_stage_encoding(dist)


def image_to_tensor(image: Image.Image):
    """PIL RGB -> float tensor (3, H, W) in [0, 1]."""
    array = np.array(image.convert("RGB")).astype(np.float32) / 255.0
    return torch.from_numpy(np.moveaxis(array, 2, 0))


def tensor_to_image(sample):
    """Float tensor (3, H, W) in [0, 1] -> PIL RGB."""
    array = 255.0 * np.moveaxis(sample.float().cpu().numpy(), 0, 2)
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))


def create_binary_mask(image, round=True):
    """A mask image -> 'L' mask; an RGBA image with real alpha uses its alpha channel."""
    if image.mode == "RGBA" and image.getextrema()[-1] != (255, 255):
        image = image.split()[-1].convert("L")
        if round:
            image = image.point(lambda x: 255 if x > 128 else 0)
    else:
        image = image.convert("L")
        if round:
            image = image.point(lambda x: 255 if x > 128 else 0)
    return image


def gaussian_blur_mask(mask: Image.Image, sigma_x: float, sigma_y: float) -> Image.Image:
    """Separable Gaussian blur with A1111's kernel size 2*int(2.5*sigma+0.5)+1 (as its cv2 call)."""
    array = np.array(mask).astype(np.float32)
    for axis, sigma in ((1, sigma_x), (0, sigma_y)):
        if sigma <= 0:
            continue
        k = 2 * int(2.5 * sigma + 0.5) + 1
        xs = np.arange(k, dtype=np.float32) - (k - 1) / 2
        kernel = np.exp(-(xs ** 2) / (2 * sigma * sigma))
        kernel /= kernel.sum()
        pad = k // 2
        pad_width = [(0, 0), (0, 0)]
        pad_width[axis] = (pad, pad)
        padded = np.pad(array, pad_width, mode="reflect") if min(array.shape) > pad else np.pad(array, pad_width, mode="edge")
        out = np.zeros_like(array)
        for i in range(k):
            if axis == 1:
                out += kernel[i] * padded[:, i:i + array.shape[1]]
            else:
                out += kernel[i] * padded[i:i + array.shape[0], :]
        array = out
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8), mode="L")


def apply_overlay(image, paste_loc, overlay):
    """Paste a result back into its crop box and put the untouched original pixels over it."""
    if overlay is None:
        return image, image.copy()
    if paste_loc is not None:
        x, y, w, h = paste_loc
        base_image = Image.new("RGBA", (overlay.width, overlay.height))
        image = image.resize((w, h), Image.LANCZOS) if image.size != (w, h) else image
        base_image.paste(image, (x, y))
        image = base_image
    image = image.convert("RGBA")
    original_denoised_image = image.copy()
    image.alpha_composite(overlay)
    image = image.convert("RGB")
    return image, original_denoised_image


def setup_color_correction(image):
    """Remember the init image's colour statistics (in LAB) to match results to it."""
    return np.array(image.convert("RGB")).astype(np.float32)


def apply_color_correction(correction, original_image):
    """Match each RGB channel's mean and spread to the init image's, then restore luminance detail."""
    target = correction
    source = np.array(original_image.convert("RGB")).astype(np.float32)
    result = np.empty_like(source)
    for c in range(3):
        s_mean, s_std = source[..., c].mean(), source[..., c].std() + 1e-6
        t_mean, t_std = target[..., c].mean(), target[..., c].std() + 1e-6
        result[..., c] = (source[..., c] - s_mean) / s_std * t_std + t_mean
    image = Image.fromarray(np.clip(result, 0, 255).astype(np.uint8))
    return image.convert("RGB")


def image_hash(image: Image.Image) -> str:
    return hashlib.md5(image.tobytes()).hexdigest()


def flatten_to_rgb(image: Image.Image, background="#ffffff") -> Image.Image:
    """Any mode (RGBA, L, I;16, P) -> RGB, with transparency filled by `background`."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.array(image).astype(np.float32)
        array = array / max(array.max(), 1.0) * 255.0
        image = Image.fromarray(array.astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background_image = Image.new("RGBA", image.size, background)
        background_image.alpha_composite(image)
        return background_image.convert("RGB")
    return image.convert("RGB")


def invert_mask(mask: Image.Image) -> Image.Image:
    return ImageOps.invert(mask.convert("L"))


def blur_filter(image, radius):
    return image.filter(ImageFilter.GaussianBlur(radius))
