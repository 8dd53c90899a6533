"""The engine inside a worker process: start-up without a UI, one job at a time, and its state for the front."""
import os
import socket
import time

from modules import errors, shared


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
    """Run `job` (jobs.Job) through its engine entry point; its saved images are recorded for the front."""
    from modules.distributed import captured_saves, engine_jobs, jobs, script_layout
    started = time.perf_counter()
    apply_settings(job.settings)
    if job.checkpoint:
        use_checkpoint(job.checkpoint)
    script_layout.apply(job.script_layout)
    with captured_saves.capture() as saved:
        value = engine_jobs.run(job.kind, job.request)
    return jobs.JobResult(task_id=job.task_id, value=value, saved_images=saved, checkpoint=loaded_checkpoint(),
                          seconds=time.perf_counter() - started)


def progress(preview_key=None):
    """The job's progress numbers, and a live preview when the sampler moved since `preview_key`."""
    state = shared.state
    fraction, eta = state.progress()
    key = (state.job_no, state.sampling_step, state.id_live_preview)
    preview = None
    if key != preview_key and state.current_latent is not None:
        from modules import live_preview
        try:
            preview = live_preview.current_preview()
        except Exception:
            errors.report("Error making a live preview", exc_info=True)
    return {
        "job": state.job, "job_no": state.job_no, "job_count": state.job_count, "sampling_step": state.sampling_step,
        "sampling_steps": state.sampling_steps, "total_steps": state.total_steps,
        "completed_steps": state.completed_steps, "textinfo": state.textinfo, "fraction": fraction, "eta": eta,
        "preview": preview, "preview_key": key if preview is not None else preview_key,
    }


def device_memory():
    """Memory of this worker's device: CUDA's free/total and torch's allocations, or the process RSS on CPU."""
    import psutil
    import torch
    ram = psutil.virtual_memory()
    memory = {"ram": {"free": ram.available, "used": psutil.Process(os.getpid()).memory_info().rss, "total": ram.total}}
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        memory["cuda"] = {
            "free": free, "used": total - free, "total": total,
            "allocated": torch.cuda.memory_allocated(), "reserved": torch.cuda.memory_reserved(),
            "peak_allocated": torch.cuda.max_memory_allocated(),
        }
    return memory


def engine_state():
    return {"device": str(shared.device), "checkpoint": loaded_checkpoint(), "memory": device_memory()}
