"""A checkpoint loaded for a test and everything unloaded after it, so the next test starts with no model in use and
none kept (a refiner the job switched to, or sd_checkpoints_limit's cache)."""
import contextlib

from modules import loaded_models, sd_models


@contextlib.contextmanager
def loaded_for_the_test(checkpoint):
    try:
        yield sd_models.load_model(sd_models.CheckpointInfo(checkpoint))
    finally:
        sd_models.unload_model_weights()
        for kept in list(loaded_models.loaded):
            loaded_models.forget(kept)
