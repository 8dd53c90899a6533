"""A page opened (or reloaded) after start-up shows the settings as they are now, not as they were when the page was
built (A1111 refreshes them as the page loads too): the checkpoint (switched in another tab, through the API or by a
job's refiner), the quicksettings, the Settings tab and the page's `opts` (#settings_json).

Gradio's page keeps a loading status for every component a backend event has output, and updates all of them at every
status change of every later event: a load event with the Settings tab's ~400 components as outputs made each later
Generate about 0.5 s slower in the browser (benchmark_first_image.py). So the backend sends the Settings tab's values
as one JSON, and a frontend-only step (which has no loading status) puts them into the components."""
import json

import gradio as gr

from modules import errors, shared
from webui import page_assets, quicksettings, tab_settings


def current_updates(keys):
    """An update per option key showing its value now; an option whose choices function fails keeps its value."""
    updates = []
    for key in keys:
        try:
            updates.append(tab_settings.current_value_update(key, shared.opts.data_labels[key]))
        except Exception:
            errors.report(f"Error reading the current value of setting {key}", exc_info=True)
            updates.append(gr.skip())
    return updates


def current_values_json(shown):
    """The options' values now, for (key, component) pairs in order, as the components hold them."""
    return json.dumps([tab_settings.shown_value(type(component), getattr(component, "multiselect", None),
                                                getattr(shared.opts, key)) for key, component in shown])


def bind(demo, ctx):
    quick_keys = list(ctx.quicksettings)
    settings = ctx.tabs["settings"]
    # info lines (gr.HTML) show no value of their own
    shown = [(key, component) for key, component in zip(settings["keys"], settings["components"])
             if not isinstance(component, gr.HTML)]
    values_now = gr.Textbox("[]", visible=False, elem_id="settings_values_now")
    # Puts the values into the Settings tab and remembers them as `settingsShownValues` ({key: value}): Apply sends
    # only what the user edited since (tab_settings.gather_edited_js). Once it is set after the page loads, the page
    # shows current settings everywhere: a value typed before then may be put back to the stored one.
    show_values_js = ("(values) => { values = JSON.parse(values); window.settingsShownValues = Object.fromEntries("
                      f"{json.dumps([key for key, _ in shown])}.map((key, i) => [key, values[i]])); return values; }}")

    def refresh():
        checkpoint = gr.update(choices=quicksettings.checkpoint_titles(), value=quicksettings.current_checkpoint_title())
        return [checkpoint, page_assets.options_json(), current_values_json(shown), *current_updates(quick_keys)]

    loaded = demo.load(fn=refresh, inputs=[], outputs=[ctx.checkpoint_dropdown, ctx.settings_json, values_now,
                                                       *ctx.quicksettings.values()], queue=False, show_progress="hidden")
    loaded.then(fn=None, inputs=[ctx.settings_json], outputs=[], js="(json) => { optionsChanged(json); }") \
        .then(fn=None, inputs=[values_now], outputs=[component for _, component in shown], js=show_values_js)
    # After Apply the tab shows what is stored now: a refused value goes back, and settings changed elsewhere since
    # the page loaded appear.
    settings["applied"].then(fn=lambda: current_values_json(shown), inputs=[], outputs=[values_now], queue=False,
                             show_progress="hidden") \
        .then(fn=None, inputs=[values_now], outputs=[component for _, component in shown], js=show_values_js)
