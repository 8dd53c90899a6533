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


class StylesRow:
    """The styles picker under the buttons: the multiselect of saved styles and the row that saves a new one
    (A1111's `ui_prompt_styles.UiPromptStyles`; extensions read its `dropdown`)."""

    def __init__(self, id_part: str, prompt, negative_prompt):
        style_names = list(shared.prompt_styles.styles) if shared.prompt_styles is not None else []
        self.dropdown = gr.Dropdown(label="Styles", elem_id=f"{id_part}_styles", choices=style_names, value=[], multiselect=True)
        with gr.Row(elem_id=f"{id_part}_style_edit_row"):
            self.style_name = gr.Textbox(label="Style name", show_label=False, placeholder="New style name", elem_id=f"{id_part}_style_name", scale=3, min_width=100)
            self.save_button = gr.Button("💾", elem_id=f"{id_part}_style_save", size="sm", min_width=40, scale=1)
        # queued: the gr.Warning that says why nothing was saved reaches the page only from a queued event
        self.save_button.click(fn=save_style, inputs=[self.style_name, prompt, negative_prompt, self.dropdown], outputs=[self.dropdown, self.style_name])


class Toprow:
    """The prompt row of a generation tab (A1111: modules.ui_toprow.Toprow): prompts with token counters,
    Generate / Interrupt / Skip, ↙️ paste, 🗑️ clear, 📋 apply styles, and the styles.

    `Toprow(is_img2img, is_compact=False, id_part=None)` as A1111: elem ids start with `id_part` ("txt2img" or
    "img2img" by default; extensions pass their own, e.g. "mov2mov"). Classic layout: one row above the tab. With
    `is_compact` (the `compact_prompt_box` setting) the tab places the prompts with `create_inline_toprow_prompts()`
    at the top of its settings column and the buttons with `create_inline_toprow_image()` above its results.
    """

    def __init__(self, is_img2img=False, is_compact=False, id_part=None):
        self.id_part = id_part or ("img2img" if is_img2img else "txt2img")
        self.is_img2img = is_img2img
        self.is_compact = is_compact
        if is_compact:
            self.create_submit_box()
        else:
            with gr.Row(elem_id=f"{self.id_part}_toprow", elem_classes=["toprow"]):
                self.create_classic_toprow()

    def create_classic_toprow(self):
        self.create_prompts()
        with gr.Column(scale=1, min_width=180, elem_id=f"{self.id_part}_actions_column"):
            self.create_submit_box()
            self.create_tools_row()
            self.create_styles_ui()

    def create_inline_toprow_prompts(self):
        if not self.is_compact:
            return
        self.create_prompts()
        with gr.Row(elem_classes=["toprow-compact-stylerow"]):
            with gr.Column(elem_classes=["toprow-compact-tools"]):
                self.create_tools_row()
            with gr.Column():
                self.create_styles_ui()

    def create_inline_toprow_image(self):
        if not self.is_compact:
            return
        self.submit_box.render()

    def create_prompts(self):
        id_part = self.id_part
        with gr.Column(scale=6, elem_id=f"{id_part}_prompt_container", elem_classes=["toprow"] if self.is_compact else []):
            with gr.Row(elem_id=f"{id_part}_prompt_row"):
                self.prompt = gr.Textbox(label="Prompt", show_label=False, lines=3, elem_id=f"{id_part}_prompt",
                                         value=first_prompt(id_part),
                                         placeholder="Prompt\n(Press Ctrl+Enter to generate, Alt+Enter to skip, Esc to interrupt)")
                # Counted for the prompt the page opens with (the counter follows later edits).
                self.token_counter = gr.HTML(token_counter_html(self.prompt.value), elem_id=f"{id_part}_token_counter", elem_classes=["token-counter-box"])
            with gr.Row(elem_id=f"{id_part}_neg_prompt_row"):
                self.negative_prompt = gr.Textbox(label="Negative prompt", show_label=False, lines=3, elem_id=f"{id_part}_neg_prompt", value="",
                                                  placeholder="Negative prompt\n(Press Ctrl+Enter to generate, Alt+Enter to skip, Esc to interrupt)")
                self.negative_token_counter = gr.HTML(token_counter_html(""), elem_id=f"{id_part}_negative_token_counter", elem_classes=["token-counter-box"])

    def create_submit_box(self):
        id_part = self.id_part
        # Compact: made here unrendered, placed above the results by create_inline_toprow_image().
        with gr.Column(elem_id=f"{id_part}_generate_box", elem_classes=["generate-box"], render=not self.is_compact) as self.submit_box:
            self.submit = gr.Button("Generate", elem_id=f"{id_part}_generate", variant="primary")
            with gr.Row():
                self.interrupt = gr.Button("Interrupt", elem_id=f"{id_part}_interrupt", size="sm")
                self.skip = gr.Button("Skip", elem_id=f"{id_part}_skip", size="sm")

        def interrupt(request: gr.Request):
            job_runner.interrupt(id_part, request)

        def skip(request: gr.Request):
            job_runner.skip(id_part, request)

        self.interrupt.click(fn=interrupt, inputs=[], outputs=[], concurrency_limit=None, queue=False)
        self.skip.click(fn=skip, inputs=[], outputs=[], concurrency_limit=None, queue=False)

    def create_tools_row(self):
        id_part = self.id_part
        with gr.Row(elem_id=f"{id_part}_tools"):
            self.paste = gr.Button("↙️", elem_id=f"{id_part}_paste", size="sm", min_width=40)
            self.clear_prompt = gr.Button("🗑️", elem_id=f"{id_part}_clear_prompt", size="sm", min_width=40)
            self.apply_styles = gr.Button("📋", elem_id=f"{id_part}_style_apply", size="sm", min_width=40)
        self.clear_prompt.click(fn=lambda: ("", ""), inputs=[], outputs=[self.prompt, self.negative_prompt], queue=False)

    def create_styles_ui(self):
        self.ui_styles = StylesRow(self.id_part, self.prompt, self.negative_prompt)
        if shared.prompt_styles is not None:
            def apply(prompt, negative, styles):
                db = shared.prompt_styles
                return db.apply_styles_to_prompt(prompt, styles), db.apply_negative_styles_to_prompt(negative, styles), []
            styles = self.ui_styles.dropdown
            self.apply_styles.click(fn=apply, inputs=[self.prompt, self.negative_prompt, styles], outputs=[self.prompt, self.negative_prompt, styles], queue=False)

    def bind_token_counters(self, steps):
        """The counters follow the prompts; `steps` (the tab's Sampling steps) expands prompt-editing schedules."""
        styles = self.ui_styles.dropdown
        self.prompt.change(fn=lambda t, s, st: token_counter_html(t, s, st, True), inputs=[self.prompt, steps, styles], outputs=[self.token_counter], queue=False, show_progress="hidden")
        self.negative_prompt.change(fn=lambda t, s, st: token_counter_html(t, s, st, False), inputs=[self.negative_prompt, steps, styles], outputs=[self.negative_token_counter], queue=False, show_progress="hidden")


def infotext_html(text: str) -> str:
    if not text:
        return ""
    return "<div class='infotext'>" + "<br>".join(html.escape(line) for line in text.split("\n")) + "</div>"
