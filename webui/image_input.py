"""The image inputs of our tabs: a gr.Image that refuses a file it cannot read with a message naming the input and
the file (Gradio's own answer is a bare "Error" and a traceback in the console)."""
import os

import gradio as gr


class ImageInput(gr.Image):
    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, SyntaxError) as e:  # PIL: UnidentifiedImageError, truncated or broken data
            name = getattr(payload, "orig_name", None) or os.path.basename(str(getattr(payload, "path", "") or "the file"))
            raise gr.Error(f"{self.label}: cannot read {name} as an image ({e}).") from None

    def get_block_name(self):
        return "image"
