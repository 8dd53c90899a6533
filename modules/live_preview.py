"""Live preview of the latent being sampled: a cheap linear latent->RGB approximation, or the full VAE."""
import numpy as np
import torch
from PIL import Image

from modules import shared

# SD1's 4 latent channels -> RGB, a least-squares fit widely used for "Approx cheap" previews.
SD1_LATENT_RGB = torch.tensor([
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
])


def cheap_approximation(sample: torch.Tensor) -> torch.Tensor:
    """(4, H, W) latent -> (3, H, W) roughly in [-1, 1]."""
    return torch.einsum("chw,cr->rhw", sample.float().cpu(), SD1_LATENT_RGB)


def latent_to_image(sample: torch.Tensor, method: str) -> Image.Image:
    if method == "TAESD":
        from modules import sd_vae_taesd
        model = sd_vae_taesd.decoder_model()
        if model is not None:
            with torch.inference_mode():
                x = model(sample[None].to(next(model.parameters()).device, next(model.parameters()).dtype))[0] * 2 - 1
            x = torch.clamp((x.float().cpu() + 1.0) / 2.0, 0.0, 1.0)
            return Image.fromarray((255.0 * x.permute(1, 2, 0).numpy()).round().astype(np.uint8))
        method = "Approx cheap"
    if method == "Full" and shared.sd_model is not None:
        with torch.inference_mode():
            x = shared.sd_model.decode_first_stage(sample[None].to(shared.device, dtype=shared.sd_model.first_stage_model.dtype if hasattr(shared.sd_model.first_stage_model, "dtype") else torch.float32))[0]
    else:
        x = cheap_approximation(sample)
    x = torch.clamp((x.float().cpu() + 1.0) / 2.0, 0.0, 1.0)
    array = (255.0 * x.permute(1, 2, 0).numpy()).round().astype(np.uint8)
    image = Image.fromarray(array)
    if method != "Full":
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
