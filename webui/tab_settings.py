"""The Settings tab: every registered option (ours and extensions'), grouped by section, searchable, saved atomically."""
import html

import gradio as gr

from modules import errors, settings_guard, shared
from modules.shared import opts


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


def component_args(info):
    args = info.component_args
    if callable(args):
        try:
            args = args()
        except Exception:
            errors.report(f"Error getting component arguments for setting {info.label}", exc_info=True)
            args = {}
    return dict(args or {})


def frozen(key, info):
    return settings_guard.frozen(key, info)


def create_setting_component(key, info, value=None):
    """The component for one option, with A1111's elem id `setting_<key>` and a refresh button when asked."""
    cls = resolve_component(info)
    args = component_args(info)
    args.setdefault("label", info.label or key)
    value = opts.data.get(key, info.default) if value is None else value
    if cls is gr.Dropdown and args.get("multiselect") and value is None:
        value = []
    if cls in (gr.Dropdown, gr.Radio) and not args.get("multiselect"):
        choices = args.get("choices") or []
        plain = [c[1] if isinstance(c, (list, tuple)) else c for c in choices]
        if value is not None and plain and value not in plain and cls is gr.Dropdown:
            args["allow_custom_value"] = True
    if cls is gr.CheckboxGroup and value is None:
        value = []
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
        if opts.set(key, value):
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
    try:
        from modules import script_callbacks
        script_callbacks.ui_settings_callback()
    except (ImportError, AttributeError):
        pass
    opts.reorder()
    keys, components = [], []
    from webui import quicksettings
    shown_above = set(quicksettings.extra_quicksettings_keys())  # those live in the quicksettings row instead
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
    apply_button.click(fn=lambda *values: apply_settings(keys, values), inputs=components, outputs=[result])
    reload_button.click(fn=lambda: shared.state.request_restart(), inputs=[], outputs=[], js="() => { setTimeout(() => location.reload(), 4000); }")
    search.input(fn=None, inputs=[search], outputs=[search], js=SEARCH_JS)
    ctx.register_tab("settings", keys=keys, components=components, result=result)
