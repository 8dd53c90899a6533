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


def _check(req: dict):
    from modules import sd_vae
    for key, value in req.items():
        info = shared.opts.data_labels.get(key)
        if info is None:
            raise RequestError(key, f"there is no setting named {key!r}")
        try:
            settings_guard.check_setting(key, value, info=info)
        except settings_guard.SettingRefused as e:
            raise HTTPException(status_code=403, detail=str(e)) from None
    if req.get("sd_model_checkpoint") not in (None, ""):
        req["sd_model_checkpoint"] = processing_request.checkpoint_or_error("sd_model_checkpoint", req["sd_model_checkpoint"]).title
    if "sd_vae" in req:
        valid = ["Automatic", "None", *sd_vae.vae_dict]
        if req["sd_vae"] not in valid:
            raise RequestError("sd_vae", f"VAE not found: {req['sd_vae']!r}; valid VAEs: {', '.join(valid)}", 400)


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
    req = dict(req)
    _check(req)
    queued = any(key in MODEL_SETTINGS or shared.opts.data_labels[key].onchange is not None for key in req)
    if queued:
        call_queue.run_queued(_apply, req, kind="options")
    else:
        _apply(req)
