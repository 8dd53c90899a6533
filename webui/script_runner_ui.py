"""Building a ScriptRunner's gradio UI: always-on scripts' sections, the Script dropdown and its hidden groups.

`create_script_ui(runner, is_img2img)` returns the flat list of input components in A1111's order:
`[Script dropdown (type=index), always-on scripts' controls..., selectable scripts' controls...]`, so a tab passes
their values as `script_args` and `ScriptRunner.run`/the hooks slice them with each script's `args_from/args_to`.
"""
import contextlib
import os

import gradio as gr

from modules import errors, scripts


@contextlib.contextmanager
def tab_scope(runner):
    """While building a generation tab: every component fires this runner's scripts' before/after_component."""
    previous = scripts.scripts_current
    scripts.scripts_current = runner
    try:
        yield runner
    finally:
        scripts.scripts_current = previous


def _api_info(script, controls):
    args = []
    for control in controls:
        arg = {"label": getattr(control, "label", None) or ""}
        for field in ("value", "minimum", "maximum", "step"):
            value = getattr(control, field, None)
            if value is not None:
                arg[field] = value
        choices = getattr(control, "choices", None)
        if choices is not None:
            arg["choices"] = [x[0] if isinstance(x, tuple) else x for x in choices]
        args.append(arg)
    try:
        from modules.api import models as api_models
        return api_models.ScriptInfo(name=script.name, is_img2img=script.is_img2img, is_alwayson=script.alwayson,
                                     args=[api_models.ScriptArg(**a) for a in args])
    except Exception:
        return {"name": script.name, "is_img2img": script.is_img2img, "is_alwayson": script.alwayson, "args": args}


def _create_one(runner, script):
    """Call script.ui() and append its controls to runner.inputs; a failing ui() leaves the script without controls."""
    script.args_from = len(runner.inputs)
    script.args_to = len(runner.inputs)
    try:
        controls = scripts.wrap_call(script.ui, script.filename, "ui", script.is_img2img)
        if controls is None:
            script.controls = []
            return
        controls = list(controls) if isinstance(controls, (list, tuple)) else [controls]
        script.controls = controls
        script.name = scripts.wrap_call(script.title, script.filename, "title", default=script.filename).lower()
        for control in controls:
            try:
                control.custom_script_source = os.path.basename(script.filename)
            except Exception:
                pass
        script.api_info = _api_info(script, controls)
        if script.infotext_fields is not None:
            runner.infotext_fields += list(script.infotext_fields)
        if script.paste_field_names is not None:
            runner.paste_field_names += list(script.paste_field_names)
        runner.inputs += controls
        script.args_to = len(runner.inputs)
    except Exception:
        errors.report(f"Error creating UI for {script.name or script.filename}: ", exc_info=True)


def _create_with_group(runner, script):
    if script.create_group:
        with gr.Group(visible=script.alwayson) as group:
            _create_one(runner, script)
        script.group = group
    else:
        _create_one(runner, script)


def create_section_ui(runner, section):
    """The always-on scripts whose `section` is `section` (None: the default section), at the caller's place."""
    for script in runner.alwayson_scripts:
        if script.section != section or getattr(script, "_ui_built_for", None) is runner:
            continue
        script._ui_built_for = runner
        _create_with_group(runner, script)


def create_script_ui(runner, is_img2img=False, *, sections=None):
    """Build every script's UI of `runner`; returns runner.inputs (index 0 is the Script dropdown).

    Always-on scripts of `sections` (default: all, None-section first) are placed here unless the tab already
    placed them with create_section_ui(); then the Script dropdown; then each selectable script in a group that
    stays hidden until it is chosen.
    """
    if not runner.initialized:
        runner.initialize_scripts(is_img2img)
    runner.inputs = [None]
    runner.infotext_fields = []
    runner.paste_field_names = []

    if sections is None:
        sections = [None] + sorted({s.section for s in runner.alwayson_scripts if s.section is not None}, key=str)
    for section in sections:
        create_section_ui(runner, section)

    dropdown = gr.Dropdown(label="Script", elem_id="script_list",
                           choices=["None"] + runner.titles, value="None", type="index")
    dropdown.custom_script_source = "scripts"
    runner.inputs[0] = dropdown
    runner.script_dropdown = dropdown

    for script in runner.selectable_scripts:
        _create_with_group(runner, script)

    selectable = list(runner.selectable_scripts)
    groups = [s.group for s in selectable if s.group is not None]

    def select_script(index):
        chosen = selectable[index - 1] if index and 0 < index <= len(selectable) else None
        return [gr.update(visible=chosen is s) for s in selectable if s.group is not None]

    if groups:
        dropdown.change(fn=select_script, inputs=[dropdown], outputs=groups, show_progress="hidden", queue=False)

    runner.infotext_fields.append((dropdown, lambda params: gr.update(value=params.get("Script", "None"))))
    for script in selectable:
        if script.group is not None:
            title = scripts.wrap_call(script.title, script.filename, "title", default="")
            runner.infotext_fields.append((script.group, lambda params, t=title: gr.update(visible=params.get("Script") == t)))

    for script in runner.alwayson_scripts:
        if getattr(script, "_ui_built_for", None) is runner:
            del script._ui_built_for
    runner.apply_on_before_component_callbacks()
    runner.ui_created = True
    return runner.inputs


def infotext_values(runner, params):
    """For each (component, key or callable) of runner.infotext_fields: the value/update to show for `params`.

    Returns a list aligned with `infotext_components(runner)`: gr.update() where the infotext has nothing.
    """
    values = []
    for item in runner.infotext_fields:
        component, key = item[0], item[1]  # a tuple or A1111's PasteField(component, target, api)
        try:
            if callable(key):
                value = key(params)
            else:
                value = params[key] if key in params else gr.update()
        except Exception:
            errors.report(f"Error restoring {getattr(component, 'label', None) or component} from infotext", exc_info=True)
            value = gr.update()
        values.append(value)
    return values


def infotext_components(runner):
    return [item[0] for item in runner.infotext_fields]


def default_script_args(runner):
    """The script_args the UI would send untouched: 0 for the dropdown, each control's initial value."""
    return [0] + [getattr(c, "value", None) for c in runner.inputs[1:]]
