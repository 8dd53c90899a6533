"""Latents <-> images: the one place where latents are decoded (full VAE, TAESD or the cheap linear preview) and
images are encoded.

A1111 exposes these names from modules.processing and modules.sd_samplers_common; both re-export them from here.
Decoding a batch goes image by image (bounded memory) and, when an fp16/bf16 VAE produces NaNs (the SDXL VAE
overflows in fp16), converts the VAE to fp32 and decodes that image again, as A1111 does.
"""
import torch

from modules import devices, errors, images, model_families, sd_vae_taesd, shared
from modules.processing_helpers import tensor_to_image
from modules.shared import opts, state

approximation_indexes = {"Full": 0, "Approx NN": 1, "Approx cheap": 2, "TAESD": 3}


VAE_NAN_RETRY_MESSAGE = (
    "A tensor with all NaNs was produced in VAE.\n"
    "Web UI will now convert VAE into 32-bit float and retry.\n"
    "To disable this behavior, disable the 'Automatically revert VAE to 32-bit floats' setting.\n"
    "To always start with 32-bit VAE, use --no-half-vae commandline flag."
)


def latent_format_of(model):
    """The model's latent format (modules.model_families); SD1's when there is no model."""
    return model.latent_format if model is not None else model_families.SD1_LATENT


def cheap_approximation(sample: torch.Tensor, latent_format=model_families.SD1_LATENT) -> torch.Tensor:
    """(C, h, w) latent -> (3, h, w) roughly in [-1, 1], by the latent format's linear map of the channels; computed
    where the latent is (as A1111), so a GPU latent is not copied to RAM and back for a preview."""
    factors = torch.tensor(latent_format.rgb_factors, dtype=torch.float32, device=sample.device)
    return torch.einsum("chw,cr->rhw", sample.float(), factors)


def samples_to_images_tensor(sample, approximation=None, model=None):
    """Latents (B, C, h, w) -> images in [-1, 1]: the full VAE (0), the cheap linear map (1, 2) or TAESD (3).

    With no `approximation`, the live preview method is used (A1111's signature and behaviour)."""
    if approximation is None or (state.interrupted and opts.live_preview_fast_interrupt):
        approximation = approximation_indexes.get(opts.show_progress_type, 0)
    model = model if model is not None else shared.sd_model
    latent_format = latent_format_of(model)

    if approximation in (1, 2):
        # "Approx NN" has no model here; both use the cheap linear latent->RGB map
        return torch.stack([cheap_approximation(s, latent_format) for s in sample])
    if approximation == 3:
        decoder = sd_vae_taesd.decoder_model(latent_format.taesd_decoder)
        if decoder is not None:
            parameter = next(decoder.parameters())
            return decoder(sample.to(parameter.device, parameter.dtype)).detach() * 2 - 1
        # no TAESD weights in models/VAE-approx: decode fully instead

    with torch.no_grad(), devices.without_autocast():
        return model.decode_first_stage(sample.to(model.first_stage_model.dtype))


def decode_first_stage(model, x):
    """Latents -> images in [-1, 1] by the "VAE type for decode" setting."""
    x = x.to(devices.dtype_vae)
    return samples_to_images_tensor(x, approximation_indexes.get(opts.sd_vae_decode_method, 0), model)


def _retry_vae_in_higher_precision(model):
    """After NaNs from a half-precision VAE: switch it to fp32 (or bf16 when that setting asks) for this and later
    decodes; False when that is not allowed or would change nothing."""
    if opts.auto_vae_precision_bfloat16:
        target = torch.bfloat16
        message = "A tensor with all NaNs was produced in VAE, converting VAE to bfloat16 and retrying."
    else:
        target = torch.float32
        message = VAE_NAN_RETRY_MESSAGE
    if not opts.auto_vae_precision or devices.dtype_vae == target:
        return False
    errors.print_error_explanation(message)
    devices.dtype_vae = target
    model.first_stage_model.to(target)
    return True


def decode_latent_batch(model, batch, target_device=None, check_for_nans=False):
    """Decode latents one image at a time (images in [-1, 1]); with `check_for_nans`, a VAE that produces NaNs in half
    precision is converted to fp32 and the image decoded again, otherwise a NansException names the VAE."""
    samples = []
    for i in range(batch.shape[0]):
        sample = decode_first_stage(model, batch[i:i + 1])[0]
        if check_for_nans:
            try:
                devices.test_for_nans(sample, "vae")
            except devices.NansException:
                if not _retry_vae_in_higher_precision(model):
                    raise
                sample = decode_first_stage(model, batch[i:i + 1])[0]
                devices.test_for_nans(sample, "vae")
        if target_device is not None:
            sample = sample.to(target_device)
        samples.append(sample)
    return samples


def latents_to_image_tensors(model, samples):
    """Latents -> image tensors (B, 3, H, W) in [0, 1], float32 on the CPU, NaN-checked."""
    decoded = torch.stack(decode_latent_batch(model, samples, target_device=devices.cpu, check_for_nans=True)).float()
    return torch.clamp((decoded + 1.0) / 2.0, min=0.0, max=1.0)


def encode_first_stage(model, x):
    """Images in [-1, 1] (B, 3, H, W) -> latents scaled as the UNet sees them (one image at a time)."""
    x = x.to(shared.device, dtype=devices.dtype_vae)
    latents = [model.get_first_stage_encoding(model.encode_first_stage(x[i:i + 1])) for i in range(x.shape[0])]
    return torch.cat(latents)


def images_tensor_to_samples(image, approximation=None, model=None):
    """Images in [0, 1] -> latents. Always the full VAE encoder (no TAESD encoder ships), so `approximation` is
    accepted for A1111 compatibility and ignored."""
    model = model if model is not None else shared.sd_model
    return encode_first_stage(model, image.to(shared.device, dtype=devices.dtype_vae) * 2 - 1)


def single_sample_to_image(sample, approximation=None):
    """One latent (C, h, w) -> PIL image, by the preview method unless `approximation` is given."""
    x_sample = samples_to_images_tensor(sample.unsqueeze(0), approximation)[0] * 0.5 + 0.5
    return tensor_to_image(torch.clamp(x_sample, min=0.0, max=1.0))


def sample_to_image(samples, index=0, approximation=None):
    return single_sample_to_image(samples[index], approximation)


def samples_to_image_grid(samples, approximation=None):
    return images.image_grid([single_sample_to_image(sample, approximation) for sample in samples])
