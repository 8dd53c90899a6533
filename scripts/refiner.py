"""The Refiner accordion of txt2img and img2img (A1111's built-in "Refiner" script): sampling switches to another
checkpoint (an SDXL refiner, typically) once the given fraction of the steps is done. The switch itself happens in
the sampler (modules.sd_samplers_common.apply_refiner), which also writes "Refiner" and "Refiner switch at" to the
infotext; pasting such an infotext opens the accordion with the same checkpoint and fraction."""
import gradio as gr

from modules import scripts, sd_models
from modules.ui_components import InputAccordion


def lookup_checkpoint(title):
    """The dropdown showing the infotext's refiner; its choices are refreshed, since a checkpoint hashed since the
    page was built has a longer title now ("name [hash]")."""
    info = sd_models.get_closet_checkpoint_match(title)
    if info is None:
        return None
    return gr.update(choices=sd_models.checkpoint_tiles(), value=info.title)


class ScriptRefiner(scripts.Script):
    def title(self):
        return "Refiner"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        with InputAccordion(False, label="Refiner", elem_id=self.elem_id("enable")) as enable_refiner:
            with gr.Row():
                # allow_custom_value: a chosen checkpoint hashed since is listed as "name [hash]" after 🔄, and Gradio
                # refused Generate while its old title was selected; the job resolves any title by name
                refiner_checkpoint = gr.Dropdown(label="Checkpoint", elem_id=self.elem_id("checkpoint"),
                                                 choices=sd_models.checkpoint_tiles(), value=None, allow_custom_value=True,
                                                 info="switch to another model in the middle of generation")
                refresh = gr.Button("\U0001f504", elem_id=self.elem_id("checkpoint_refresh"), size="sm", min_width=40, scale=0)
                refiner_switch_at = gr.Slider(value=0.8, label="Switch at", minimum=0.01, maximum=1.0, step=0.01,
                                              elem_id=self.elem_id("switch_at"),
                                              info="fraction of sampling steps when the switch to refiner model should happen; 1=never, 0.5=switch in the middle of generation")

        def refreshed():
            sd_models.list_models()
            return gr.update(choices=sd_models.checkpoint_tiles())

        refresh.click(fn=refreshed, inputs=[], outputs=[refiner_checkpoint])
        self.infotext_fields = [
            (enable_refiner, lambda d: "Refiner" in d),
            (refiner_checkpoint, lambda d: lookup_checkpoint(d.get("Refiner"))),
            (refiner_switch_at, "Refiner switch at"),
        ]
        return [enable_refiner, refiner_checkpoint, refiner_switch_at]

    def setup(self, p, enable_refiner, refiner_checkpoint, refiner_switch_at):
        # the switch is done by the sampler: modules.sd_samplers_common.apply_refiner
        if not enable_refiner or refiner_checkpoint in (None, "", "None"):
            p.refiner_checkpoint = None
            p.refiner_switch_at = None
        else:
            p.refiner_checkpoint = refiner_checkpoint
            p.refiner_switch_at = refiner_switch_at
