"""The helpers of the original latent-diffusion `ldm.modules.diffusionmodules.util` that extensions import; they
are defined beside the code that uses them."""
from ldm.models.diffusion.ddpm import make_beta_schedule  # noqa: F401
from ldm.modules.diffusionmodules.openaimodel import timestep_embedding  # noqa: F401
