"""Original path: sgm.modules.diffusionmodules.openaimodel. SDXL's UNet is ldm's UNetModel built with
num_classes="sequential" (SDXL's vector input); the classes are the same objects, so a hook on one is a hook on both."""
from ldm.modules.diffusionmodules.openaimodel import (  # noqa: F401
    Downsample, ResBlock, TimestepBlock, TimestepEmbedSequential, UNetModel, Upsample, timestep_embedding,
)
