"""Original path: sgm.modules.diffusionmodules.util."""
from ldm.modules.diffusionmodules.openaimodel import timestep_embedding, zero_module, normalization, conv_nd, linear  # noqa: F401
