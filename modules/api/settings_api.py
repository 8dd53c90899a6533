"""GET/POST /sdapi/v1/options: every setting's value, and setting them the way the Settings page does, with the
checks a remote client needs (unknown settings, frozen and restricted settings, checkpoint and VAE names)."""
from fastapi import HTTPException

from modules import call_queue, processing_request, settings_guard, shared
from modules.processing_request import RequestError

# Settings that change the loaded model: applied in the job queue's turn, never under a running job.
MODEL_SETTINGS = {"sd_model_checkpoint", "sd_vae"}


def get_options() -> dict:
    options = {}
    for key in shared.opts.data:
        info = shared.opts.data_labels.get(key)
        options[key] = shared.opts.data.get(key, info.default if info is not None else None)
    for key, info in shared.opts.data_labels.items():
        if key not in options and not info.do_not_save:
            options[key] = info.default
    return options


def check_settings(req: dict, field: str = ""):
    """Refuse settings that may not be set to these values from outside, each refusal naming `field`+key: unknown
    settings, frozen or restricted ones, values of the wrong kind or not among the choices, unknown checkpoints and
    VAEs. The checkpoint is replaced by its title. Used for POST /options and for a job's override_settings."""
    from modules import sd_vae
    for key, value in req.items():
        info = shared.opts.data_labels.get(key)
        if info is None:
            raise RequestError(field + key, f"there is no setting named {key!r}")
        if not _changes(key, value):
            continue  # a value it holds already (a GET /options sent back whole) is fine, as A1111's opts.set
        try:
            settings_guard.check_setting(key, value, info=info)
        except settings_guard.SettingRefused as e:
            raise HTTPException(status_code=403, detail=f"{field.rstrip('.')}: {e}" if field else str(e)) from None
        problem = None if key in MODEL_SETTINGS else settings_guard.value_problem(key, info, value, shared.opts.data.get(key, info.default))
        if problem:  # (a checkpoint or VAE is found by any of its names below)
            raise RequestError(field + key, f"{field}{key} {problem}")
    if _changes("sd_model_checkpoint", req.get("sd_model_checkpoint")) and "sd_model_checkpoint" in req:
        req["sd_model_checkpoint"] = processing_request.checkpoint_or_error(field + "sd_model_checkpoint", req["sd_model_checkpoint"]).title
    if _changes("sd_vae", req.get("sd_vae")) and "sd_vae" in req:
        valid = ["Automatic", "None", *sd_vae.vae_dict]
        if req["sd_vae"] not in valid:
            raise RequestError(field + "sd_vae", f"VAE not found: {req['sd_vae']!r}; valid VAEs: {', '.join(valid)}", 400)


def _changes(key, value) -> bool:
    info = shared.opts.data_labels.get(key)
    return info is None or value != shared.opts.data.get(key, info.default)


def _apply(req: dict):
    from modules import sd_models, sd_vae
    for key, value in req.items():
        if key == "sd_model_checkpoint":
            info = sd_models.get_closet_checkpoint_match(value)
            if shared.sd_model is None or shared.sd_model.sd_checkpoint_info.filename != info.filename:
                sd_models.reload_model_weights(info=info)
        shared.opts.set(key, value, is_api=True)
        if key == "sd_vae":
            sd_vae.reload_vae_weights()
    shared.opts.save(shared.config_filename)


def set_options(req: dict):
    """Check every key first (nothing is set when one is refused), then set them and save config.json. Settings
    that change the model, or have an onchange handler, wait for the jobs ahead of them."""
    if not isinstance(req, dict):
        raise RequestError("body", "the body must be an object of setting names and values")
    req = {key: value for key, value in req.items() if _changes(key, value)}
    check_settings(req)
    queued = any(key in MODEL_SETTINGS or shared.opts.data_labels[key].onchange is not None for key in req)
    if queued:
        call_queue.run_queued(_apply, req, kind="options")
    else:
        _apply(req)
