"""Width and height follow the checkpoint: picking a checkpoint whose native size differs from the previous one's
(SD1 512, SDXL 1024, an SD2 768-v model 768, or the file's `modelspec.resolution`) sets txt2img's and img2img's
size sliders to it; switching between checkpoints of the same size leaves the user's size alone."""
import gradio as gr

from modules import sd_models, shared


def current_native_size():
    """The native (width, height) of the loaded checkpoint, else of the selected one (SD1's when there is none)."""
    model = shared.sd_model
    if model is not None:
        return sd_models.native_size(model.sd_checkpoint_info, model)
    return sd_models.native_size(sd_models.select_checkpoint())


def size_updates(previous):
    """(new native size, slider updates): the sliders move only when the native size changed."""
    size = current_native_size()
    if tuple(previous or ()) == tuple(size):
        return [size] + [gr.update()] * 4
    width, height = size
    return [size, gr.update(value=width), gr.update(value=height), gr.update(value=width), gr.update(value=height)]


def bind(ctx, switch_event):
    """After the checkpoint dropdown's switch (`switch_event`), update both tabs' width and height."""
    sliders = []
    for tabname in ("txt2img", "img2img"):
        form = ctx.tabs.get(tabname, {}).get("form", {})
        sliders += [form.get("width"), form.get("height")]
    if any(slider is None for slider in sliders):
        return
    native = gr.State(current_native_size())
    switch_event.then(fn=size_updates, inputs=[native], outputs=[native] + sliders, queue=False, show_progress="hidden")
