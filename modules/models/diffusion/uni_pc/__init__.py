"""UniPC (Zhao et al. 2023): a unified predictor-corrector multistep solver; extensions import it from here."""
from .uni_pc import NoiseScheduleVP, UniPC, interpolate_fn  # noqa: F401
