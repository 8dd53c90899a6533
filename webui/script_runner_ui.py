"""Building a ScriptRunner's gradio UI: always-on scripts' sections, the Script dropdown and its hidden groups.

`create_script_ui(runner, is_img2img)` returns the flat list of input components in A1111's order:
`[Script dropdown (type=index), always-on scripts' controls..., selectable scripts' controls...]`, so a tab passes
their values as `script_args` and `ScriptRunner.run`/the hooks slice them with each script's `args_from/args_to`.
Extensions that lay out their own tab build it piece by piece as in A1111: `runner.prepare_ui()`, then
`runner.setup_ui_for_section(category)` at each place, then `runner.setup_ui()` (the ScriptRunner methods call
the functions of the same names here).
"""
import contextlib
import os
import sys

import gradio as gr

from modules import errors, scripts
from modules.api import models as api_models


@contextlib.contextmanager
def tab_scope(runner):
    """While building a generation tab: every component fires this runner's scripts' before/after_component."""
    previous = scripts.scripts_current
    scripts.scripts_current = runner
    try:
        yield runner
    finally:
        scripts.scripts_current = previous


@contextlib.contextmanager
def outside_the_page():
    """While script objects are made: components their __init__ creates belong to no page yet (A1111 makes them
    before building the page), so the script's ui() can place them with .render(). An extension that makes its own
    runner while the page is being built (mov2mov) would otherwise put them in the page twice."""
    from gradio.context import Context
    saved = Context.root_block, Context.block
    Context.root_block, Context.block = None, None
    try:
        yield
    finally:
        Context.root_block, Context.block = saved


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
    try:  # an extension's control may hold a value the API model refuses: then a plain dict
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


def prepare_ui(runner):
    """Start building `runner`'s controls: inputs[0] is kept for the Script dropdown (A1111's prepare_ui)."""
    runner.inputs = [None]
    runner.infotext_fields = []
    runner.paste_field_names = []


def setup_ui_for_section(runner, section, scriptlist=None):
    """The controls of the always-on scripts whose `section` is `section` (None: the default section), here;
    with `scriptlist`, those scripts instead (selectable ones go in hidden groups)."""
    for script in runner.alwayson_scripts if scriptlist is None else scriptlist:
        if script.alwayson and script.section != section:
            continue
        _create_with_group(runner, script)


def setup_ui(runner):
    """The rest of `runner`'s controls (A1111's setup_ui): the default section's always-on scripts, the Script
    dropdown, then each selectable script in a group that stays hidden until it is chosen. Returns runner.inputs
    (index 0 the dropdown), whose values are the `script_args` of a job."""
    setup_ui_for_section(runner, None)

    dropdown = gr.Dropdown(label="Script", elem_id="script_list",
                           choices=["None"] + runner.titles, value="None", type="index")
    dropdown.custom_script_source = "scripts"
    runner.inputs[0] = dropdown
    runner.script_dropdown = dropdown

    setup_ui_for_section(runner, None, runner.selectable_scripts)

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

    runner.apply_on_before_component_callbacks()
    runner.ui_created = True
    return runner.inputs


def create_script_ui(runner, is_img2img=False):
    """Build every script's UI of `runner` in one place, in the order A1111's tabs give their script_args: for each
    category of the page's layout (shared_items.ordered_ui_categories) the always-on scripts of that section,
    with setup_ui() at "scripts". An extension's tab built category by category (mov2mov) gets the same order,
    so the arguments it sends line up with this runner's scripts. Returns runner.inputs."""
    from modules import shared_items
    if not runner.initialized:
        runner.initialize_scripts(is_img2img)
    prepare_ui(runner)
    for category in shared_items.ordered_ui_categories():
        if category == "scripts":
            setup_ui(runner)
        setup_ui_for_section(runner, category)
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


# ScriptRunner's A1111 methods (prepare_ui, setup_ui_for_section, setup_ui) call these, and it makes scripts
# outside_the_page(); modules/scripts.py stays free of gradio.
scripts.ui_builder = sys.modules[__name__]
