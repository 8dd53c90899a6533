"""The engine inside a worker process: start-up without a UI, one job at a time, and its state for the front."""
import socket
import time

from modules import shared


def start(settings=None):
    """Settings (the front's), extensions, models, styles, upscalers, scripts, then the front's checkpoint, as the
    web UI starts."""
    from modules import gradio_compat, initialize
    shared.cmd_opts.workers = shared.cmd_opts.ray_address = None  # the front's flags, but a worker is no front
    gradio_compat.apply()  # extensions' scripts are written for Gradio 3, here as in the web UI
    initialize.initialize(load_model_in_background=False, settings=settings)


def loaded_checkpoint():
    """Name (path below the checkpoint folder) of the loaded checkpoint, or None."""
    info = getattr(shared.sd_model, "sd_checkpoint_info", None)
    return info.name if info is not None else None


def use_checkpoint(name):
    """Load checkpoint `name` unless it is the loaded one; a checkpoint missing on this machine is a clear error."""
    from modules import sd_models
    info = sd_models.get_closet_checkpoint_match(name)
    if info is None:
        sd_models.list_models()  # it may have been copied here after start-up
        info = sd_models.get_closet_checkpoint_match(name)
    if info is None:
        raise FileNotFoundError(f"Checkpoint {name!r} is not on worker host {socket.gethostname()}: "
                                f"put it in {sd_models.model_path}")
    if loaded_checkpoint() != info.name:
        sd_models.reload_model_weights(info=info)


def apply_settings(settings):
    """The front's settings for this job; the checkpoint is chosen by the job, the VAE reloaded if it changed."""
    if not settings:
        return
    data = shared.opts.data
    vae_before = data.get("sd_vae")
    for key, value in settings.items():
        if key != "sd_model_checkpoint":
            data[key] = value
    if data.get("sd_vae") != vae_before and shared.sd_model is not None:
        from modules import sd_vae
        sd_vae.reload_vae_weights()


def run_job(job):
    """Run `job` (jobs.Job) as the single-process queue does; its saved images are recorded for the front."""
    from modules import job_queue
    from modules.distributed import captured_saves, jobs, script_layout
    started = time.perf_counter()
    apply_settings(job.settings)
    if job.checkpoint:
        use_checkpoint(job.checkpoint)
    script_layout.apply(job.script_layout)
    with captured_saves.capture() as saved:
        try:
            value = job_queue.run_job(job.kind, job.request, job.task_id)
        except Exception as e:
            raise jobs.JobError(e, saved) from e
    return jobs.JobResult(task_id=job.task_id, value=value, saved_images=saved, checkpoint=loaded_checkpoint(),
                          seconds=time.perf_counter() - started)


def engine_state():
    """Device, loaded checkpoint, and memory as /sdapi/v1/memory reports it (this process's RAM, the CUDA device's)."""
    from modules.api import listings
    return {"device": str(shared.device), "checkpoint": loaded_checkpoint(), "memory": listings.memory()}
