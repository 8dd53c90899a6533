"""A page opened (or reloaded) after start-up shows the checkpoint and the quicksettings as they are now, not as they
were when the page was built: a model switched in another tab, through the API or by a job's refiner must not show as
the old one (A1111 refreshes them as the page loads too). The page's `opts` (#settings_json) follow.

Only these few components are refreshed on load. Gradio's page keeps a loading status for every component any event
has ever output, and updates all of them at every status change of every later event: refreshing the Settings tab's
~400 components on load made each later Generate about 0.5 s slower in the browser (benchmark_first_image.py). The
Settings tab shows the values it was built with and those applied from this page."""
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


def bind(demo, ctx):
    keys = list(ctx.quicksettings)

    def values_now():
        checkpoint = gr.update(choices=quicksettings.checkpoint_titles(), value=quicksettings.current_checkpoint_title())
        return [checkpoint, page_assets.options_json(), *current_updates(keys)]

    loaded = demo.load(fn=values_now, inputs=[], outputs=[ctx.checkpoint_dropdown, ctx.settings_json, *ctx.quicksettings.values()],
                       queue=False, show_progress="hidden")
    loaded.then(fn=None, inputs=[ctx.settings_json], outputs=[], js="(json) => { optionsChanged(json); }")
