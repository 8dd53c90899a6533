"""Start-up of the engine, in A1111's order: settings, extensions, models, scripts, upscalers, then the model.

Nothing here imports gradio; the web UI calls `initialize()` and then builds itself.
"""
import os
import threading
import time

from modules import errors, extensions, modelloader, processing, scripts, sd_models, sd_vae, shared, styles

startup_timings = {}


def _step(name, fn):
    start = time.perf_counter()
    try:
        fn()
    except Exception:
        errors.report(f"Error during startup step: {name}", exc_info=True)
    startup_timings[name] = time.perf_counter() - start


def load_settings():
    shared.opts.load(shared.config_filename)
    if not os.path.exists(shared.config_filename):
        shared.opts.save(shared.config_filename)  # as A1111: the file exists from the first start (extensions read it)


def list_extensions():
    extensions.list_extensions()


def list_models():
    sd_models.list_models()
    sd_vae.refresh_vae_list()


def load_styles():
    style_files = shared.cmd_opts.styles_file or [os.path.join(shared.data_path, "styles.csv")]
    shared.prompt_styles = styles.StyleDatabase(style_files)


def load_upscalers():
    modelloader.load_upscalers()


def load_extra_networks():
    """LoRA (and the A1111 module names extensions import, `networks` & co.) before any extension script loads."""
    from modules import extra_networks
    from modules.lora import networks
    extra_networks.initialize()
    extra_networks.register_default_extra_networks()
    networks.list_available_networks()
    shared.reload_hypernetworks()


def load_scripts():
    scripts.load_scripts()


def load_model():
    """Load the selected checkpoint; a missing model is a normal state. A broken one is reported and the other
    checkpoints are tried in turn (the user's own first, the demo model last), so that one bad file does not leave
    the app without a model; the setting keeps naming the selected one."""
    selected = sd_models.select_checkpoint()
    if selected is None:
        print(f"No checkpoint found. {processing.no_model_message()}")
        return
    others = [info for info in sd_models.checkpoints_list.values() if info.filename != selected.filename]
    others.sort(key=lambda info: sd_models.is_builtin_demo(info.filename))
    for info in [selected, *others]:
        try:
            sd_models.load_model(info)
        except Exception:
            errors.report(f"Could not load the checkpoint {info.filename}", exc_info=True)
            continue
        if info is not selected:
            print(f"Loaded {info.title} instead of {selected.title}, which could not be loaded (see above).", flush=True)
        return


def start_workers():
    """With --workers ray / --ray-address the workers load the models; this process is their front."""
    from modules.distributed import executor, front
    front.start()
    executor.workers_changed()  # jobs queued while they started now run on all of them


model_loading_thread = None


def initialize(load_model_in_background=True, settings=None):
    """`settings`: options that override the settings file (a Ray worker starts with its front's settings)."""
    from modules.distributed import cluster
    if cluster.requested(shared.cmd_opts):
        cluster.import_ray()  # a missing Ray stops the start here, not at the first job
    _step("settings", load_settings)
    shared.opts.data.update(settings or {})
    _step("extensions", list_extensions)
    _step("models", list_models)
    _step("styles", load_styles)
    _step("upscalers", load_upscalers)
    _step("extra networks", load_extra_networks)
    _step("scripts", load_scripts)
    global model_loading_thread
    if shared.cmd_opts.ui_debug_mode:
        return
    if cluster.requested(shared.cmd_opts):
        from modules import job_queue
        from modules.distributed import executor
        job_queue.queue.set_executor(executor.RayExecutor())  # jobs queued while the workers start wait for them
        # In this (the main) thread, not a start-up thread: Ray's local cluster dies with the thread that started it
        # (see cluster.connect), and Ray's first imports (pydantic.v1) raced the UI's in another thread. It takes
        # seconds: the workers load their engines in their own processes, in the background.
        _step("workers", start_workers)
        return
    if shared.cmd_opts.nowebui and shared.cmd_opts.skip_load_model_at_start:
        return  # the first generation loads it
    if load_model_in_background:
        model_loading_thread = threading.Thread(target=lambda: _step("model", load_model), daemon=True)
        model_loading_thread.start()
    else:
        _step("model", load_model)


def wait_for_model(timeout=None):
    if model_loading_thread is not None:
        model_loading_thread.join(timeout)
