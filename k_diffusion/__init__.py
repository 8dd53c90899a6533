"""The project's own k-diffusion: the samplers and schedules with k-diffusion's public names and signatures, so code
written against `k_diffusion.sampling` / `k_diffusion.external` runs unchanged (A1111 pins crowsonkb/k-diffusion)."""
from . import utils, sampling, external  # noqa: F401
