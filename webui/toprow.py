"""The prompt row shared by txt2img and img2img: prompts with token counters, Generate, Interrupt, Skip, styles."""
import html

import gradio as gr

from modules import shared
from webui import job_runner


def token_counter_html(text: str, steps: int = 20, styles=None, is_positive: bool = True) -> str:
    from modules import token_counter
    count, max_length = token_counter.count_tokens(text or "", steps=int(steps or 20), styles=styles or [], is_positive=is_positive)
    return f"<span class='token-counter'>{count}/{max_length}</span>"


def save_style(name: str, prompt: str, negative_prompt: str, selected: list):
    """Saves the current prompt and negative prompt as a style (replacing one of the same name). The selection is
    kept as it was: selecting the new style would apply its text on top of the very prompt it came from."""
    db = shared.prompt_styles
    name = (name or "").strip()
    if db is None:
        gr.Warning("Styles are not available (no styles database was loaded)")
        return gr.update(), gr.update()
    if not name:
        gr.Warning("Style name: type a name for the new style first")
        return gr.update(), gr.update()
    try:
        db.save_style(name, prompt or "", negative_prompt or "")
    except Exception as e:
        gr.Warning(f"Could not save style {name!r}: {e}")
        return gr.update(), gr.update()
    selected = [x for x in (selected or []) if x in db.styles]
    return gr.update(choices=list(db.styles), value=selected), ""


DEMO_FIRST_PROMPT = "a large red circle in the centre on a white background"


def first_prompt(tabname: str) -> str:
    """With the built-in demo model selected, txt2img starts with a prompt it can draw, so a newcomer's first
    Generate gives a right picture; otherwise the prompt starts empty, as in A1111."""
    if tabname != "txt2img":
        return ""
    from webui.generation_controls import demo_model_selected
    return DEMO_FIRST_PROMPT if demo_model_selected() else ""


class Toprow:
    def __init__(self, tabname: str):
        self.tabname = tabname
        with gr.Row(elem_id=f"{tabname}_toprow", elem_classes=["toprow"]):
            with gr.Column(scale=6):
                with gr.Row():
                    self.prompt = gr.Textbox(label="Prompt", show_label=False, lines=3, elem_id=f"{tabname}_prompt",
                                             value=first_prompt(tabname),
                                             placeholder="Prompt\n(Press Ctrl+Enter to generate, Alt+Enter to skip, Esc to interrupt)")
                    # Counted for the prompt the page opens with (the counter follows later edits).
                    self.token_counter = gr.HTML(token_counter_html(self.prompt.value), elem_id=f"{tabname}_token_counter", elem_classes=["token-counter-box"])
                with gr.Row():
                    self.negative_prompt = gr.Textbox(label="Negative prompt", show_label=False, lines=3, elem_id=f"{tabname}_neg_prompt",
                                                      placeholder="Negative prompt\n(Press Ctrl+Enter to generate, Alt+Enter to skip, Esc to interrupt)")
                    self.negative_token_counter = gr.HTML(token_counter_html(""), elem_id=f"{tabname}_negative_token_counter", elem_classes=["token-counter-box"])
            with gr.Column(scale=1, min_width=180):
                self.submit = gr.Button("Generate", elem_id=f"{tabname}_generate", variant="primary")
                with gr.Row():
                    self.interrupt = gr.Button("Interrupt", elem_id=f"{tabname}_interrupt", size="sm")
                    self.skip = gr.Button("Skip", elem_id=f"{tabname}_skip", size="sm")
                with gr.Row():
                    self.paste = gr.Button("↙️", elem_id=f"{tabname}_paste", size="sm", min_width=40)
                    self.clear_prompt = gr.Button("🗑️", elem_id=f"{tabname}_clear_prompt", size="sm", min_width=40)
                    self.apply_styles = gr.Button("📋", elem_id=f"{tabname}_style_apply", size="sm", min_width=40)
                style_names = list(shared.prompt_styles.styles) if shared.prompt_styles is not None else []
                self.styles = gr.Dropdown(label="Styles", elem_id=f"{tabname}_styles", choices=style_names, value=[], multiselect=True)
                with gr.Row(elem_id=f"{tabname}_style_edit_row"):
                    self.style_name = gr.Textbox(label="Style name", show_label=False, placeholder="New style name", elem_id=f"{tabname}_style_name", scale=3, min_width=100)
                    self.save_style = gr.Button("💾", elem_id=f"{tabname}_style_save", size="sm", min_width=40, scale=1)

        def interrupt(request: gr.Request):
            job_runner.interrupt(tabname, request)

        def skip(request: gr.Request):
            job_runner.skip(tabname, request)

        self.interrupt.click(fn=interrupt, inputs=[], outputs=[], concurrency_limit=None, queue=False)
        self.skip.click(fn=skip, inputs=[], outputs=[], concurrency_limit=None, queue=False)
        self.clear_prompt.click(fn=lambda: ("", ""), inputs=[], outputs=[self.prompt, self.negative_prompt], queue=False)
        self.save_style.click(fn=save_style, inputs=[self.style_name, self.prompt, self.negative_prompt, self.styles], outputs=[self.styles, self.style_name], queue=False)

    def bind_token_counters(self, steps):
        self.prompt.change(fn=lambda t, s, st: token_counter_html(t, s, st, True), inputs=[self.prompt, steps, self.styles], outputs=[self.token_counter], queue=False, show_progress="hidden")
        self.negative_prompt.change(fn=lambda t, s, st: token_counter_html(t, s, st, False), inputs=[self.negative_prompt, steps, self.styles], outputs=[self.negative_token_counter], queue=False, show_progress="hidden")
        if shared.prompt_styles is not None:
            def apply(prompt, negative, styles):
                db = shared.prompt_styles
                return db.apply_styles_to_prompt(prompt, styles), db.apply_negative_styles_to_prompt(negative, styles), []
            self.apply_styles.click(fn=apply, inputs=[self.prompt, self.negative_prompt, self.styles], outputs=[self.prompt, self.negative_prompt, self.styles], queue=False)


def infotext_html(text: str) -> str:
    if not text:
        return ""
    return "<div class='infotext'>" + "<br>".join(html.escape(line) for line in text.split("\n")) + "</div>"
