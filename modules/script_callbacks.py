"""The registry of named events extensions hook into (A1111: modules.script_callbacks).

Extensions register with `on_<event>(fn, *, name=None)`; the engine fires `<event>_callback(...)` at fixed points.
Every single invocation is isolated: an exception is reported with the extension's name and file and the loop
goes on, so one broken extension never stops generation or the UI.
"""
import dataclasses
import os
import sys
from typing import Any, Optional

from modules import errors


# ---------------------------------------------------------------------------------------------- parameter objects

class ImageSaveParams:
    def __init__(self, image, p, filename, pnginfo):
        self.image = image          # PIL image about to be saved; callbacks may replace it
        self.p = p                  # the processing object, or None (e.g. extras)
        self.filename = filename    # full path the image is written to; callbacks may change it
        self.pnginfo = pnginfo      # dict of text chunks; the infotext is under "parameters"


class ExtraNoiseParams:
    def __init__(self, noise, x, xi):
        self.noise = noise          # the noise about to be added; may be replaced
        self.x = x                  # the latent before noise
        self.xi = xi                # the latent with noise added


class CFGDenoiserParams:
    def __init__(self, x, image_cond, sigma, sampling_step, total_sampling_steps, text_cond, text_uncond, denoiser=None):
        self.x = x                                  # latent batch (cond and uncond rows); may be replaced
        self.image_cond = image_cond                # image conditioning batch; may be replaced
        self.sigma = sigma                          # current noise level per row; may be replaced
        self.sampling_step = sampling_step
        self.total_sampling_steps = total_sampling_steps
        self.text_cond = text_cond                  # encoder states (tensor, or dict for SDXL); may be replaced
        self.text_uncond = text_uncond
        self.denoiser = denoiser                    # the CFGDenoiser object itself


class CFGDenoisedParams:
    def __init__(self, x, sampling_step, total_sampling_steps, inner_model):
        self.x = x                                  # raw model outputs for cond and uncond rows
        self.sampling_step = sampling_step
        self.total_sampling_steps = total_sampling_steps
        self.inner_model = inner_model


class AfterCFGCallbackParams:
    def __init__(self, x, sampling_step, total_sampling_steps):
        self.x = x                                  # the combined (guided) prediction; may be replaced
        self.sampling_step = sampling_step
        self.total_sampling_steps = total_sampling_steps


class UiTrainTabParams:
    def __init__(self, txt2img_preview_params):
        self.txt2img_preview_params = txt2img_preview_params


class ImageGridLoopParams:
    def __init__(self, imgs, cols, rows):
        self.imgs = imgs
        self.cols = cols
        self.rows = rows


@dataclasses.dataclass
class BeforeTokenCounterParams:
    prompt: str
    steps: int
    styles: list
    is_positive: bool = True


@dataclasses.dataclass
class ScriptCallback:
    script: str             # the file that registered the callback
    callback: Any
    name: Optional[str] = None   # "<extension>/<file>/<category>[/<name>]", unique per category


# ---------------------------------------------------------------------------------------------- the registry

_CATEGORIES = [
    "app_started", "model_loaded", "ui_tabs", "ui_train_tabs", "ui_settings", "before_image_saved", "image_saved",
    "extra_noise", "cfg_denoiser", "cfg_denoised", "cfg_after_cfg", "before_component", "after_component",
    "image_grid", "infotext_pasted", "script_unloaded", "before_ui", "on_reload", "list_optimizers", "list_unets",
    "before_token_counter",
]

callback_map = {f"callbacks_{category}": [] for category in _CATEGORIES}

# Sorted lists are cached per category; any registration or removal invalidates the cache.
ordered_callbacks_map = {}


def clear_callbacks():
    for callback_list in callback_map.values():
        callback_list.clear()
    ordered_callbacks_map.clear()


def _caller_filename():
    """The file outside this module that called on_xxx (cheaper than inspect.stack(), which reads sources)."""
    frame = sys._getframe(1)
    this_file = __file__
    while frame is not None and frame.f_code.co_filename == this_file:
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else "unknown file"


def _extension_for_file(filename):
    from modules import extensions
    return extensions.find_extension(filename)


def add_callback(callbacks, fun, *, name=None, category="unknown", filename=None):
    if filename is None:
        filename = _caller_filename()

    extension = _extension_for_file(filename)
    extension_name = extension.canonical_name if extension else "base"
    callback_name = f"{extension_name}/{os.path.basename(filename)}/{category}"
    if name is not None:
        callback_name += f"/{name}"

    taken = {c.name for c in callbacks}
    unique_name = callback_name
    index = 0
    while unique_name in taken:
        index += 1
        unique_name = f"{callback_name}-{index}"

    callbacks.append(ScriptCallback(filename, fun, unique_name))
    ordered_callbacks_map.clear()


def sort_callbacks(category, unordered_callbacks, *, enable_user_sort=True):
    """Registration order, then metadata.ini [callbacks/...] Before/After, then the user's priority setting."""
    callbacks = list(unordered_callbacks)
    from modules import extensions
    try:  # an extension's metadata.ini may be malformed
        callbacks = extensions.order_by_metadata(callbacks, category)
    except Exception:
        errors.report(f"Error ordering callbacks for {category}", exc_info=True)

    if enable_user_sort:
        from modules import shared
        # an option only some categories register (A1111's "prioritized callbacks" settings)
        prioritized = getattr(shared.opts, f"prioritized_callbacks_{category}", None) or []
        if prioritized:
            by_name = {c.name: c for c in callbacks}
            first = [by_name[n] for n in prioritized if n in by_name]
            callbacks = first + [c for c in callbacks if c not in first]
    return callbacks


def ordered_callbacks(category, unordered_callbacks=None, *, enable_user_sort=True):
    if unordered_callbacks is None:
        unordered_callbacks = callback_map.get("callbacks_" + category, [])
    if not enable_user_sort:
        return sort_callbacks(category, unordered_callbacks, enable_user_sort=False)

    cached = ordered_callbacks_map.get(category)
    if cached is not None and len(cached) == len(unordered_callbacks) and set(map(id, cached)) == set(map(id, unordered_callbacks)):
        return cached
    cached = sort_callbacks(category, unordered_callbacks)
    ordered_callbacks_map[category] = cached
    return cached


def enumerate_callbacks():
    for category, callbacks in callback_map.items():
        for callback in callbacks:
            yield category, callback


def _describe(c):
    return f"Error executing callback {c.name} for {c.script}"


def _run(category, *args, reverse=False, **kwargs):
    """Call every callback of a category, each in its own try/except; return their results (None for failures)."""
    results = []
    callbacks = ordered_callbacks(category)
    for c in (reversed(callbacks) if reverse else callbacks):
        try:
            results.append(c.callback(*args, **kwargs))
        except Exception:
            errors.report(_describe(c), exc_info=True)
            results.append(None)
    return results


# ---------------------------------------------------------------------------------------------- firing (engine side)

def app_started_callback(demo, app):
    _run("app_started", demo, app)


def app_reload_callback():
    _run("on_reload")


before_reload_callback = app_reload_callback


def model_loaded_callback(sd_model):
    _run("model_loaded", sd_model)


def ui_tabs_callback():
    """Collect (blocks, title, elem_id) tuples from every on_ui_tabs callback."""
    res = []
    for c in ordered_callbacks("ui_tabs"):
        try:
            res += c.callback() or []
        except Exception:
            errors.report(_describe(c), exc_info=True)
    return res


def ui_train_tabs_callback(params: UiTrainTabParams):
    _run("ui_train_tabs", params)


def ui_settings_callback():
    _run("ui_settings")


def before_image_saved_callback(params: ImageSaveParams):
    _run("before_image_saved", params)


def image_saved_callback(params: ImageSaveParams):
    _run("image_saved", params)


def extra_noise_callback(params: ExtraNoiseParams):
    _run("extra_noise", params)


def cfg_denoiser_callback(params: CFGDenoiserParams):
    _run("cfg_denoiser", params)


def cfg_denoised_callback(params: CFGDenoisedParams):
    _run("cfg_denoised", params)


def cfg_after_cfg_callback(params: AfterCFGCallbackParams):
    _run("cfg_after_cfg", params)


def before_component_callback(component, **kwargs):
    _run("before_component", component, **kwargs)


def after_component_callback(component, **kwargs):
    _run("after_component", component, **kwargs)


def image_grid_callback(params: ImageGridLoopParams):
    _run("image_grid", params)


def infotext_pasted_callback(infotext: str, params: dict):
    _run("infotext_pasted", infotext, params)


def script_unloaded_callback():
    _run("script_unloaded", reverse=True)


def before_ui_callback():
    _run("before_ui", reverse=True)


def list_optimizers_callback():
    res = []
    for c in ordered_callbacks("list_optimizers"):
        try:
            c.callback(res)
        except Exception:
            errors.report(_describe(c), exc_info=True)
    return res


def list_unets_callback():
    res = []
    for c in ordered_callbacks("list_unets"):
        try:
            c.callback(res)
        except Exception:
            errors.report(_describe(c), exc_info=True)
    return res


def before_token_counter_callback(params: BeforeTokenCounterParams):
    _run("before_token_counter", params)


# ---------------------------------------------------------------------------------------------- registering (extension side)

def remove_current_script_callbacks():
    """Forget every callback registered from the file that calls this."""
    filename = _caller_filename()
    if filename == "unknown file":
        return
    for callback_list in callback_map.values():
        callback_list[:] = [c for c in callback_list if c.script != filename]
    ordered_callbacks_map.clear()


def remove_callbacks_for_function(callback_func):
    for callback_list in callback_map.values():
        callback_list[:] = [c for c in callback_list if c.callback != callback_func]
    ordered_callbacks_map.clear()


def _register(category, callback, name):
    if not callable(callback):
        raise TypeError(f"on_{category}: the callback must be callable, got {type(callback).__name__}")
    add_callback(callback_map["callbacks_" + category], callback, name=name, category=category)


def on_app_started(callback, *, name=None):
    """callback(demo: gr.Blocks | None, app: FastAPI) once the server runs; add API routes here."""
    _register("app_started", callback, name)


def on_before_reload(callback, *, name=None):
    """callback() before the UI is rebuilt by Reload UI."""
    _register("on_reload", callback, name)


def on_model_loaded(callback, *, name=None):
    """callback(sd_model) after a checkpoint is loaded."""
    _register("model_loaded", callback, name)


def on_ui_tabs(callback, *, name=None):
    """callback() -> list of (gr.Blocks, title, elem_id) tabs to add to the main UI."""
    _register("ui_tabs", callback, name)


def on_ui_train_tabs(callback, *, name=None):
    """callback(params: UiTrainTabParams) inside the Train tab."""
    _register("ui_train_tabs", callback, name)


def on_ui_settings(callback, *, name=None):
    """callback() before the settings UI is built; call shared.opts.add_option there."""
    _register("ui_settings", callback, name)


def on_before_image_saved(callback, *, name=None):
    """callback(params: ImageSaveParams) before an image is written; params may be changed."""
    _register("before_image_saved", callback, name)


def on_image_saved(callback, *, name=None):
    """callback(params: ImageSaveParams) after an image is written."""
    _register("image_saved", callback, name)


def on_extra_noise(callback, *, name=None):
    """callback(params: ExtraNoiseParams) before extra noise is added in img2img/hires."""
    _register("extra_noise", callback, name)


def on_cfg_denoiser(callback, *, name=None):
    """callback(params: CFGDenoiserParams) before every UNet call of the CFG denoiser."""
    _register("cfg_denoiser", callback, name)


def on_cfg_denoised(callback, *, name=None):
    """callback(params: CFGDenoisedParams) after the UNet, before cond and uncond are combined."""
    _register("cfg_denoised", callback, name)


def on_cfg_after_cfg(callback, *, name=None):
    """callback(params: AfterCFGCallbackParams) after cond and uncond are combined."""
    _register("cfg_after_cfg", callback, name)


def on_before_component(callback, *, name=None):
    """callback(component, **kwargs) before every gradio component is created."""
    _register("before_component", callback, name)


def on_after_component(callback, *, name=None):
    """callback(component, **kwargs) after every gradio component is created."""
    _register("after_component", callback, name)


def on_image_grid(callback, *, name=None):
    """callback(params: ImageGridLoopParams) before a grid is assembled; imgs/cols/rows may be changed."""
    _register("image_grid", callback, name)


def on_infotext_pasted(callback, *, name=None):
    """callback(infotext: str, params: dict) when infotext is parsed; params may be changed."""
    _register("infotext_pasted", callback, name)


def on_script_unloaded(callback, *, name=None):
    """callback() before scripts are reloaded; undo monkeypatches here."""
    _register("script_unloaded", callback, name)


def on_before_ui(callback, *, name=None):
    """callback() before the UI is created."""
    _register("before_ui", callback, name)


def on_list_optimizers(callback, *, name=None):
    """callback(res: list) appending sd_hijack_optimizations.SdOptimization objects."""
    _register("list_optimizers", callback, name)


def on_list_unets(callback, *, name=None):
    """callback(res: list) appending sd_unet.SdUnetOption objects."""
    _register("list_unets", callback, name)


def on_before_token_counter(callback, *, name=None):
    """callback(params: BeforeTokenCounterParams) before the UI counts a prompt's tokens."""
    _register("before_token_counter", callback, name)
