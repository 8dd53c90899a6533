"""Original path: ldm.modules.diffusionmodules.util (extensions import the schedule and embedding helpers from here)."""
from ldm.models.diffusion.ddpm import make_beta_schedule  # noqa: F401
from ldm.modules.diffusionmodules.openaimodel import (  # noqa: F401
    avg_pool_nd, conv_nd, linear, normalization, timestep_embedding, zero_module, GroupNorm32,
)
