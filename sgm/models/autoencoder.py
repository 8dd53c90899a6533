"""Original path: sgm.models.autoencoder. SDXL's VAE has SD1's architecture (and key layout)."""
from ldm.models.autoencoder import AutoencoderKL  # noqa: F401

AutoencoderKLInferenceWrapper = AutoencoderKL
