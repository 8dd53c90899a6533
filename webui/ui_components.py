"""Small gradio building blocks shared by our tabs and extensions (A1111: modules.ui_components).

Each is a thin subclass of a Gradio 6 component that renders as its parent (`get_block_name`) and carries
A1111's CSS classes, so extension javascript and CSS that select on them keep working.
"""
import gradio as gr


def _classes(extra, given):
    if isinstance(given, str):
        given = [given]
    return [*extra, *(given or [])]


class ToolButton(gr.Button):
    """A small square button holding one emoji, beside an input."""

    def __init__(self, *args, **kwargs):
        kwargs["elem_classes"] = _classes(["tool"], kwargs.get("elem_classes"))
        kwargs.setdefault("size", "sm")
        kwargs.setdefault("scale", 0)
        kwargs.setdefault("min_width", 40)
        super().__init__(*args, **kwargs)

    def get_block_name(self):
        return "button"


class ResizeHandleRow(gr.Row):
    """A row whose columns the user can resize by dragging (the handle is drawn by our javascript)."""

    def __init__(self, **kwargs):
        kwargs["elem_classes"] = _classes(["resize-handle-row"], kwargs.get("elem_classes"))
        super().__init__(**kwargs)

    def get_block_name(self):
        return "row"


class FormRow(gr.Row):
    """A row of form inputs."""

    def __init__(self, **kwargs):
        kwargs["elem_classes"] = _classes(["form-row"], kwargs.get("elem_classes"))
        super().__init__(**kwargs)

    def get_block_name(self):
        return "row"


class FormColumn(gr.Column):
    """A column of form inputs."""

    def get_block_name(self):
        return "column"


class FormGroup(gr.Group):
    """A group of form inputs drawn as one block."""

    def get_block_name(self):
        return "group"


class FormHTML(gr.HTML):
    """HTML sitting among form inputs."""

    def get_block_name(self):
        return "html"


class FormColorPicker(gr.ColorPicker):
    """A colour picker sitting among form inputs."""

    def get_block_name(self):
        return "colorpicker"


class DropdownMulti(gr.Dropdown):
    """A dropdown where several values can be chosen."""

    def __init__(self, **kwargs):
        kwargs["multiselect"] = True
        super().__init__(**kwargs)

    def get_block_name(self):
        return "dropdown"


class DropdownEditable(gr.Dropdown):
    """A dropdown that also accepts a typed value not among its choices."""

    def __init__(self, **kwargs):
        kwargs["allow_custom_value"] = True
        super().__init__(**kwargs)

    def get_block_name(self):
        return "dropdown"


class InputAccordion(gr.Checkbox):
    """An accordion whose open/closed state is a checkbox value: open means enabled.

    Use as `with InputAccordion(False, label="My feature") as enabled:`; `enabled` is the checkbox (its value goes
    to script args), `enabled.accordion` the accordion holding the controls built inside the `with`.
    """

    global_index = 0

    def __init__(self, value=False, **kwargs):
        self.accordion_id = kwargs.get("elem_id")
        if self.accordion_id is None:
            self.accordion_id = f"input-accordion-{InputAccordion.global_index}"
            InputAccordion.global_index += 1

        label = kwargs.get("label", "Accordion")
        checkbox_kwargs = dict(kwargs)
        checkbox_kwargs["elem_id"] = f"{self.accordion_id}-checkbox"
        checkbox_kwargs["visible"] = False
        checkbox_kwargs["elem_classes"] = _classes(["input-accordion-checkbox"], kwargs.get("elem_classes"))
        super().__init__(value, **checkbox_kwargs)

        accordion_kwargs = {
            "label": label,
            "elem_id": self.accordion_id,
            "open": bool(value),
            "elem_classes": ["input-accordion"],
        }
        if "visible" in kwargs:
            accordion_kwargs["visible"] = kwargs["visible"]
        self.accordion = gr.Accordion(**accordion_kwargs)
        # Opening enables, closing disables, and a value set from code (e.g. pasted infotext) opens or closes it.
        self.accordion.expand(fn=lambda: True, inputs=None, outputs=[self], show_progress="hidden", queue=False)
        self.accordion.collapse(fn=lambda: False, inputs=None, outputs=[self], show_progress="hidden", queue=False)
        self.change(fn=lambda checked: gr.update(open=bool(checked)), inputs=[self], outputs=[self.accordion],
                    show_progress="hidden", queue=False)

    def extra(self):
        """A column for extra controls shown with the accordion's contents."""
        return gr.Column(elem_id=self.accordion_id + "-extra", elem_classes="input-accordion-extra", min_width=0)

    def __enter__(self):
        self.accordion.__enter__()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.accordion.__exit__(exc_type, exc_val, exc_tb)

    def get_block_name(self):
        return "checkbox"
