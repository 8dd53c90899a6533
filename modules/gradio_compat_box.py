"""`gr.Box` of Gradio 3 (a bordered container), which Gradio 6 no longer has: a Group that renders as one."""
import gradio as gr


class Box(gr.Group):
    def __init__(self, *, visible=True, elem_id=None, elem_classes=None, render=True, **kwargs):
        classes = [elem_classes] if isinstance(elem_classes, str) else list(elem_classes or [])
        super().__init__(visible=visible, elem_id=elem_id, elem_classes=classes + ["gradio-box"], render=render)

    def get_block_name(self):
        return "group"
