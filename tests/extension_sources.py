"""Extensions written for the tests: a recorder of every callback and Script hook, and broken ones."""

RECORDER = '''
import os
import gradio as gr
from modules import scripts, script_callbacks, shared

EVENTS = []
WATCHED_IDS = ("txt2img_prompt", "txt2img_steps")


def log(*event):
    EVENTS.append(event)


def shape(t):
    return tuple(t.shape) if hasattr(t, "shape") else type(t).__name__


script_callbacks.on_cfg_denoiser(lambda p: log("cfg_denoiser", p.sampling_step, p.total_sampling_steps, shape(p.x), shape(p.sigma), shape(p.text_cond), shape(p.text_uncond), p.denoiser is not None))
script_callbacks.on_cfg_denoised(lambda p: log("cfg_denoised", p.sampling_step, p.total_sampling_steps, shape(p.x), p.inner_model is not None))
script_callbacks.on_cfg_after_cfg(lambda p: log("cfg_after_cfg", p.sampling_step, p.total_sampling_steps, shape(p.x)))
script_callbacks.on_model_loaded(lambda m: log("model_loaded", m.sd_checkpoint_info.name_for_extra))
script_callbacks.on_image_grid(lambda p: log("image_grid", len(p.imgs), p.cols, p.rows))
script_callbacks.on_script_unloaded(lambda: log("script_unloaded"))
script_callbacks.on_before_reload(lambda: log("before_reload"))
script_callbacks.on_before_ui(lambda: log("before_ui"))


def before_saved(params):
    params.pnginfo["recorder"] = "was here"
    log("before_image_saved", os.path.basename(params.filename), params.p is not None, "parameters" in params.pnginfo)


script_callbacks.on_before_image_saved(before_saved)
script_callbacks.on_image_saved(lambda params: log("image_saved", os.path.basename(params.filename), os.path.exists(params.filename)))


def pasted(text, params):
    if "Recorder steps" in params:
        params["Steps"] = params.pop("Recorder steps")
    log("infotext_pasted", text.splitlines()[0])


script_callbacks.on_infotext_pasted(pasted)


def component(kind):
    def callback(component, **kwargs):
        if kwargs.get("elem_id") in WATCHED_IDS:
            log(kind, kwargs["elem_id"], kwargs.get("label"), type(component).__name__)
    return callback


script_callbacks.on_before_component(component("before_component"))
script_callbacks.on_after_component(component("after_component"))


def tabs():
    with gr.Blocks(analytics_enabled=False) as tab:
        gr.Markdown("Recorder tab", elem_id="recorder_tab_text")
    log("ui_tabs")
    return [(tab, "Recorder", "recorder_tab")]


script_callbacks.on_ui_tabs(tabs)


def settings():
    shared.opts.add_option("recorder_option", shared.OptionInfo(3, "Recorder option", section=("recorder", "Recorder")))
    log("ui_settings")


script_callbacks.on_ui_settings(settings)


def started(demo, app):
    @app.get("/recorder/events")
    def events():
        return [list(map(str, e)) for e in EVENTS]
    log("app_started", demo is not None)


script_callbacks.on_app_started(started)


class Recorder(scripts.Script):
    def title(self):
        return "Recorder"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        enabled = gr.Checkbox(True, label="Record", elem_id=self.elem_id("enabled"))
        strength = gr.Slider(0, 1, value=0.5, label="Strength", elem_id=self.elem_id("strength"))
        return [enabled, strength]

    def after_component(self, component, **kwargs):
        if kwargs.get("elem_id") in WATCHED_IDS:
            log("script_after_component", self.tabname, kwargs["elem_id"])

    def setup(self, p, *args): log("setup", args)
    def before_process(self, p, *args): log("before_process", args)
    def process(self, p, *args):
        p.extra_generation_params["Recorder strength"] = args[1]
        log("process", args)
    def before_process_batch(self, p, *args, **kw): log("before_process_batch", args, kw["batch_number"], kw["seeds"])
    def after_extra_networks_activate(self, p, *args, **kw): log("after_extra_networks_activate", args)
    def process_batch(self, p, *args, **kw): log("process_batch", args, kw["prompts"])
    def process_before_every_sampling(self, p, *args, **kw): log("process_before_every_sampling", args, tuple(kw["x"].shape))
    def before_hr(self, p, *args): log("before_hr", args)
    def on_mask_blend(self, p, mba, *args): log("on_mask_blend", args, mba.is_final_blend)
    def post_sample(self, p, ps, *args): log("post_sample", args, tuple(ps.samples.shape))
    def postprocess_batch(self, p, *args, **kw): log("postprocess_batch", args, tuple(kw["images"].shape))
    def postprocess_batch_list(self, p, pp, *args, **kw): log("postprocess_batch_list", args, len(pp.images))
    def postprocess_image(self, p, pp, *args): log("postprocess_image", args, pp.image.size)
    def postprocess_maskoverlay(self, p, ppmo, *args): log("postprocess_maskoverlay", args, ppmo.index, ppmo.mask_for_overlay is not None)
    def postprocess_image_after_composite(self, p, pp, *args): log("postprocess_image_after_composite", args)
    def postprocess(self, p, processed, *args): log("postprocess", args, len(processed.images))
'''


BROKEN_AT_IMPORT = "raise RuntimeError('broken at import')\n"
BROKEN_IN_UI = '''
from modules import scripts
class BrokenUi(scripts.Script):
    def title(self):
        return "Broken UI"
    def show(self, is_img2img):
        return scripts.AlwaysVisible
    def ui(self, is_img2img):
        raise RuntimeError("broken in ui")
    def process(self, p, *args):
        p.extra_generation_params["Broken UI process ran"] = True
'''
BROKEN_IN_CALLBACKS = '''
from modules import script_callbacks, scripts
def boom(*args):
    raise RuntimeError("broken in a callback")
for register in (script_callbacks.on_cfg_denoiser, script_callbacks.on_cfg_after_cfg, script_callbacks.on_before_image_saved,
                 script_callbacks.on_ui_settings, script_callbacks.on_ui_tabs):
    register(boom)
class BrokenHook(scripts.Script):
    def title(self):
        return "Broken hook"
    def show(self, is_img2img):
        return scripts.AlwaysVisible
    def process_batch(self, p, *args, **kwargs):
        raise RuntimeError("broken in process_batch")
'''
