"""The Settings tab: every registered option (ours and extensions'), grouped by section, searchable, saved atomically."""
import html
import json

import gradio as gr

from modules import errors, settings_guard, shared
from modules.settings_guard import as_list, choice_values, component_args
from modules.shared import opts
from webui import page_assets


def resolve_component(info):
    """An option's component: a gradio class, a name like "Slider", or the kind its default suggests."""
    component = info.component
    if isinstance(component, str):
        return getattr(gr, component)
    if component is not None:
        return component
    default = info.default
    if isinstance(default, bool):
        return gr.Checkbox
    if isinstance(default, (int, float)):
        return gr.Number
    return gr.Textbox


def frozen(key, info):
    return settings_guard.frozen(key, info)


CHOICE_COMPONENTS = (gr.Dropdown, gr.Radio, gr.CheckboxGroup)


def offer_current_values(args, value):
    """Gradio 6 refuses a value that is not among a component's choices (A1111's Gradio 3 showed it): a saved value
    missing from the list (an extension's option with no choices yet, a model since removed) joins the choices."""
    choices = list(args.get("choices") or [])
    known = choice_values(choices)
    choices += [v for v in as_list(value) if v not in known]
    args["choices"] = choices


def shown_value(cls, multiselect, value):
    """An option's value as its component holds it: a list-valued component shows "none" as an empty list."""
    if value is None and (cls is gr.CheckboxGroup or cls is gr.Dropdown and multiselect):
        return []
    return value


def component_value_and_args(key, info, value=None, args=None):
    """(component class, value, constructor args) for an option as it is now: its choices made now (or the `args`
    given), with the current value among them."""
    cls = resolve_component(info)
    args = component_args(info) if args is None else dict(args)
    value = shown_value(cls, args.get("multiselect"), opts.data.get(key, info.default) if value is None else value)
    if cls in CHOICE_COMPONENTS:
        offer_current_values(args, value)
    return cls, value, args


def current_value_update(key, info):
    """The update that shows an option's current value in its component, with its choices made now where the
    option has a choices list (an option without one keeps the choices its component was built with); an info
    line stays."""
    declared = component_args(info)
    cls, value, args = component_value_and_args(key, info, args=declared)
    if cls is gr.HTML:
        return gr.skip()
    return gr.update(value=value, **({"choices": args["choices"]} if declared.get("choices") else {}))


def create_setting_component(key, info, value=None):
    """The component for one option, with A1111's elem id `setting_<key>` and a refresh button when asked."""
    cls, value, args = component_value_and_args(key, info, value)
    args.setdefault("label", info.label or key)
    # (extension-compat) an option may pass interactive= itself (tag autocomplete's gr.Code); a frozen one stays read-only.
    interactive = bool(args.pop("interactive", True)) and not frozen(key, info)
    try:
        if cls is not gr.HTML:  # an info line has no interactive state
            args["interactive"] = interactive
        component = cls(value=value, elem_id=f"setting_{key}", **args)
    except Exception:
        errors.report(f"Error creating the component for setting {key}; showing a text box instead", exc_info=True)
        component = gr.Textbox(value=str(value), label=info.label or key, elem_id=f"setting_{key}", interactive=interactive)
    if info.refresh is not None:
        button = gr.Button("🔄", elem_id=f"refresh_{key}", size="sm", min_width=40)

        def refresh(info=info):
            info.refresh()
            new_args = component_args(info)
            return gr.update(**{k: v for k, v in new_args.items() if k in ("choices", "value")})
        button.click(fn=refresh, inputs=[], outputs=[component], queue=False)
    return component


def sections():
    """Options grouped by section, in the order sections were registered; hidden options left out."""
    grouped = {}
    for key, info in opts.data_labels.items():
        section = info.section if info.section is not None else (None, "Other")
        if section[0] is None:
            continue
        grouped.setdefault(section, []).append((key, info))
    return grouped


def apply_settings(keys, values):
    """Set every changed option (running its onchange), save config.json, and say what changed."""
    changed, needs_restart, needs_reload, failed = [], [], [], []
    for key, value in zip(keys, values):
        info = opts.data_labels.get(key)
        if info is None or info.do_not_save or frozen(key, info):
            continue
        old = opts.data.get(key, info.default)
        if isinstance(old, int) and not isinstance(old, bool) and isinstance(value, float) and value.is_integer():
            value = int(value)
        if value == old:
            continue
        problem = settings_guard.value_problem(key, info, value, old)  # the rule POST /options obeys too
        if problem:
            failed.append(f"{key} ({problem})")
        elif opts.set(key, value):
            changed.append(key)
            if info.restart:
                needs_restart.append(key)
            if info.reload_ui:
                needs_reload.append(key)
        else:
            failed.append(key)
    try:
        opts.save(shared.config_filename)
    except OSError as e:
        return f"<span class='error'>Could not save settings to {html.escape(shared.config_filename)}: {html.escape(str(e))}</span>"
    if not changed and not failed:
        return "Nothing changed."
    message = f"{len(changed)} setting{'s' if len(changed) != 1 else ''} changed: {', '.join(changed)}." if changed else ""
    if needs_restart:
        message += f" Restart the program for: {', '.join(needs_restart)}."
    if needs_reload:
        message += f" Reload UI for: {', '.join(needs_reload)}."
    if failed:
        message += f" Could not change: {', '.join(failed)}."
    return html.escape(message.strip())


def gather_edited_js(keys):
    """Javascript that gathers {key: value} for each Settings component whose value differs from what the page was
    last shown (`settingsShownValues`, {key: value}, set by settings_on_load): a page left open does not write its
    stale values over settings changed since elsewhere (another tab, the API). Before the page has been shown
    current values, every value is sent."""
    return f"""
(...values) => {{
    const keys = {json.dumps(keys)};
    const shown = window.settingsShownValues;
    const edited = {{}};
    keys.forEach((key, index) => {{
        if (!shown || (key in shown && JSON.stringify(values[index]) !== JSON.stringify(shown[key]))) edited[key] = values[index];
    }});
    return JSON.stringify(edited);
}}
"""


def apply_edited_settings(keys, gathered):
    """apply_settings for the {key: value} object gather_edited_js sends; a request naming anything but the Settings
    tab's options is refused whole, naming what it could not read."""
    try:
        edited = json.loads(gathered)
        if not isinstance(edited, dict):
            raise ValueError(f"expected an object of settings, got {type(edited).__name__}")
        unknown = [key for key in edited if key not in keys]
        if unknown:
            raise ValueError(f"no such setting on the Settings tab: {', '.join(map(repr, unknown))}")
    except ValueError as e:
        return f"<span class='error'>Settings not applied: the page sent values that could not be read ({html.escape(str(e))}).</span>"
    return apply_settings(list(edited), list(edited.values()))


def publish_options(dependency, settings_json):
    """After an event that changed settings, the page's `opts` follow and onOptionsChanged callbacks run."""
    dependency.then(fn=page_assets.options_json, inputs=[], outputs=[settings_json], queue=False, show_progress="hidden") \
        .then(fn=None, inputs=[settings_json], outputs=[], js="(json) => { optionsChanged(json); }")


SEARCH_JS = """
(query) => {
    const q = (query || '').toLowerCase();
    document.querySelectorAll('#settings [id^="setting_"]').forEach((el) => {
        const text = (el.textContent || '') + ' ' + el.id;
        el.style.display = (!q || text.toLowerCase().includes(q)) ? '' : 'none';
    });
    return query;
}
"""


def create_tab(ctx):
    opts.reorder()
    keys, components = [], []
    from webui import quicksettings
    shown_above = set(quicksettings.quicksettings_keys())  # those live in the quicksettings row instead
    with gr.Column(elem_id="settings"):
        with gr.Row():
            apply_button = gr.Button("Apply settings", variant="primary", elem_id="settings_submit")
            reload_button = gr.Button("Reload UI", elem_id="settings_restart_gradio")
        result = gr.HTML("", elem_id="settings_result")
        search = gr.Textbox(label="Search", show_label=False, placeholder="Search settings...", elem_id="settings_search")
        with gr.Tabs(elem_id="settings_tabs"):
            for (section_id, section_title), items in sections().items():
                with gr.Tab(section_title, elem_id=f"settings_{section_id}"):
                    for key, info in items:
                        if key in shown_above:
                            continue
                        if info.comment_before:
                            gr.HTML(info.comment_before, elem_classes=["settings-comment"])
                        component = create_setting_component(key, info)
                        if info.comment_after:
                            gr.HTML(info.comment_after, elem_classes=["settings-comment"])
                        keys.append(key)
                        components.append(component)
    # The edited values are gathered in the page into one hidden textbox, then sent as its JSON: an event with every
    # setting as its input would leave Gradio's page updating ~400 loading statuses at each status change of every
    # later event (each later Generate was ~0.45 s slower in the browser). They arrive as the page holds them,
    # unchecked by Gradio, which would check choices against the lists made when the page was built: apply_settings
    # checks them against lists made now.
    gathered = gr.Textbox("{}", visible=False, elem_id="settings_gathered")
    applied = apply_button.click(fn=None, inputs=components, outputs=[gathered], js=gather_edited_js(keys)) \
        .then(fn=lambda text: apply_edited_settings(keys, text), inputs=[gathered], outputs=[result])
    publish_options(applied, ctx.settings_json)
    reload_button.click(fn=lambda: shared.state.request_restart(), inputs=[], outputs=[], js="() => { setTimeout(() => location.reload(), 4000); }")
    search.input(fn=None, inputs=[search], outputs=[search], js=SEARCH_JS)
    ctx.register_tab("settings", keys=keys, components=components, result=result, applied=applied)
