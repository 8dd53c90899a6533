"""The helpers of the original latent-diffusion `ldm.modules.diffusionmodules.util` that extensions import; they
are defined beside the code that uses them."""
from ldm.models.diffusion.ddpm import make_beta_schedule  # noqa: F401
from ldm.modules.diffusionmodules.openaimodel import (  # noqa: F401
    GroupNorm32, avg_pool_nd, conv_nd, linear, normalization, timestep_embedding, zero_module,
)
