"""Live preview of the latent being sampled, by the "Live preview method" setting (modules.latent_codec decodes)."""
import numpy as np
import torch
from PIL import Image

from modules import latent_codec, sd_vae_taesd, shared


def latent_to_image(sample: torch.Tensor, method: str) -> Image.Image:
    """One latent (C, h, w) -> PIL image; TAESD without its weights, and Full without a model, fall back to the cheap
    approximation (shown at the full image size)."""
    if method == "TAESD" and sd_vae_taesd.decoder_model(latent_codec.latent_format_of(shared.sd_model).taesd_decoder) is None:
        method = "Approx cheap"
    if method == "Full" and shared.sd_model is None:
        method = "Approx cheap"
    approximation = latent_codec.approximation_indexes.get(method, latent_codec.approximation_indexes["Approx cheap"])
    with torch.inference_mode():
        x = latent_codec.samples_to_images_tensor(sample[None], approximation)[0]
    x = torch.clamp((x.float().cpu() + 1.0) / 2.0, 0.0, 1.0)
    image = Image.fromarray((255.0 * x.permute(1, 2, 0).numpy()).round().astype(np.uint8))
    if approximation in (1, 2):
        image = image.resize((image.width * 8, image.height * 8), Image.NEAREST)
    return image


def current_preview():
    """The preview of the first image of the batch being sampled, or None."""
    latent = shared.state.current_latent
    if latent is None or not shared.opts.live_previews_enable:
        return None
    sample = latent[0] if latent.dim() == 4 else latent
    if sample.shape[0] != 4:
        return None
    return latent_to_image(sample.detach(), shared.opts.show_progress_type)
