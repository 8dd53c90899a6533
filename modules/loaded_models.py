"""Checkpoints kept loaded between switches (Settings > Stable Diffusion: "Maximum number of checkpoints loaded at the
same time", sd_checkpoints_limit; A1111: sd_models.model_data.loaded_sd_models).

Switching back to a kept checkpoint moves its model instead of reading and converting the file again. Only the model
in use sits on the GPU; the others rest in RAM ("Only keep one model on device", sd_checkpoints_keep_in_cpu, on by
default), so a cache of several checkpoints never takes VRAM. Beyond the limit the least recently used is dropped.
"""
from modules import devices, lowvram, shared

loaded = []  # most recently used first; loaded[0] is shared.sd_model while one is loaded


def limit() -> int:
    return max(1, int(shared.opts.sd_checkpoints_limit))


def find(checkpoint_info):
    """The kept model of this checkpoint file, or None."""
    for model in loaded:
        if model.sd_checkpoint_info is not None and model.sd_checkpoint_info.filename == checkpoint_info.filename:
            return model
    return None


def keeps_previous() -> bool:
    """Whether switching keeps the current model loaded (the limit allows more than one)."""
    return limit() > 1


def rest(model):
    """The model stops being the one in use: to RAM (unless the setting keeps every loaded model on the device)."""
    if shared.opts.sd_checkpoints_keep_in_cpu:
        lowvram.send_model_to(model, lowvram.cpu)


def resume(model):
    """The model becomes the one in use again: back to the device (its memory mode's visiting parts stay in RAM)."""
    lowvram.send_model_to(model, devices.device)
    use(model)


def use(model):
    """Record `model` as the most recently used (a fresh load of a kept file replaces it); the models beyond the limit
    are forgotten (they rest in RAM, and are freed once nothing else holds them)."""
    same_file = find(model.sd_checkpoint_info) if model.sd_checkpoint_info is not None else None
    for old in (model, same_file):
        if old in loaded:
            loaded.remove(old)
    loaded.insert(0, model)
    del loaded[limit():]


def forget(model):
    if model in loaded:
        loaded.remove(model)
