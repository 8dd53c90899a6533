"""Gradio 2/3's `gr.inputs.*` and `gr.outputs.*` (removed in Gradio 4), for extensions that still build with them.

Each name is a function that takes the old positional order and keywords (`default=` for the value, `optional=`,
`numeric=`, ...) and returns the current component, so `gr.inputs.Slider(0, 10, 1, default=5, label="n")` works.
"""
import sys
import types

# old name -> (current component, the old constructor's positional parameters)
INPUTS = {
    "Textbox": ("Textbox", ["lines", "placeholder", "default", "numeric", "type", "label", "optional"]),
    "Number": ("Number", ["default", "label", "optional"]),
    "Slider": ("Slider", ["minimum", "maximum", "step", "default", "label", "optional"]),
    "Checkbox": ("Checkbox", ["default", "label", "optional"]),
    "CheckboxGroup": ("CheckboxGroup", ["choices", "default", "type", "label", "optional"]),
    "Radio": ("Radio", ["choices", "type", "default", "label", "optional"]),
    "Dropdown": ("Dropdown", ["choices", "type", "default", "label", "optional"]),
    "Image": ("Image", ["shape", "image_mode", "invert_colors", "source", "tool", "type", "label", "optional"]),
    "Video": ("Video", ["type", "source", "label", "optional"]),
    "Audio": ("Audio", ["source", "type", "label", "optional"]),
    "File": ("File", ["file_count", "type", "label", "keep_filename", "optional"]),
    "Dataframe": ("Dataframe", ["headers", "row_count", "col_count", "datatype", "col_width", "default", "type", "label", "optional"]),
    "State": ("State", ["default"]),
}
OUTPUTS = {
    "Textbox": ("Textbox", ["type", "label"]),
    "Image": ("Image", ["type", "plot", "label"]),
    "Video": ("Video", ["type", "label"]),
    "Audio": ("Audio", ["type", "label"]),
    "File": ("File", ["label"]),
    "Dataframe": ("Dataframe", ["headers", "max_rows", "max_cols", "overflow_row_behaviour", "type", "label"]),
    "Label": ("Label", ["num_top_classes", "type", "label"]),
    "KeyValues": ("JSON", ["value", "label"]),
    "HighlightedText": ("HighlightedText", ["color_map", "label", "show_legend"]),
    "JSON": ("JSON", ["label"]),
    "HTML": ("HTML", ["label"]),
    "Chatbot": ("Chatbot", ["label"]),
    "State": ("State", ["default"]),
}
# Keywords that only steered Gradio 3's pre/postprocessing; today's components decide by themselves.
DROPPED = {"optional", "numeric", "plot", "keep_filename", "overflow_row_behaviour", "max_cols", "col_width"}
OUTPUT_TYPES_DROPPED = {"str", "auto", "file", "numpy", "pil"}


def _factory(old_name, component_name, positional, is_output):
    def create(*args, **kwargs):
        import gradio as gr
        if len(args) > len(positional):
            raise TypeError(f"gr.{'outputs' if is_output else 'inputs'}.{old_name}() takes at most {len(positional)} positional arguments")
        kwargs.update(zip(positional, args))
        if "default" in kwargs:
            kwargs.setdefault("value", kwargs.pop("default"))
        if is_output and kwargs.get("type") in OUTPUT_TYPES_DROPPED:
            kwargs.pop("type")
        if component_name in ("Image", "Video", "Audio") and kwargs.get("type") in ("file", "auto"):
            kwargs["type"] = "filepath"
        if component_name == "File" and kwargs.get("type") == "file":
            kwargs["type"] = "filepath"
        for key in DROPPED & set(kwargs):
            kwargs.pop(key)
        return getattr(gr, component_name)(**kwargs)
    create.__name__ = old_name
    return create


def _module(name, table, is_output):
    module = types.ModuleType(name, __doc__)
    for old, (component, positional) in table.items():
        setattr(module, old, _factory(old, component, positional, is_output))
    return module


def install():
    """Make `gr.inputs`/`gr.outputs` (and `import gradio.inputs`) exist."""
    import gradio as gr
    for attr, table, is_output in (("inputs", INPUTS, False), ("outputs", OUTPUTS, True)):
        if not hasattr(gr, attr):
            module = _module(f"gradio.{attr}", table, is_output)
            setattr(gr, attr, module)
            sys.modules[f"gradio.{attr}"] = module
