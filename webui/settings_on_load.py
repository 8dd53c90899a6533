"""Every page load shows the settings as they are now, not as they were when the page was built (A1111 refreshes
them on load too): a checkpoint switched in another tab or through the API, an option applied elsewhere, then the
page reloaded, must not show the old model or value."""
import gradio as gr

from modules import errors, shared
from webui import quicksettings, tab_settings


def bind(demo, ctx):
    keys = list(ctx.quicksettings) + list(ctx.tabs["settings"]["keys"])
    components = list(ctx.quicksettings.values()) + list(ctx.tabs["settings"]["components"])

    def values_now():
        updates = [gr.update(choices=quicksettings.checkpoint_titles(), value=quicksettings.current_checkpoint_title())]
        for key in keys:
            try:
                updates.append(tab_settings.current_value_update(key, shared.opts.data_labels[key]))
            except Exception:  # an extension's option whose choices function fails: its component keeps its value
                errors.report(f"Error reading the current value of setting {key}", exc_info=True)
                updates.append(gr.skip())
        return updates

    loaded = demo.load(fn=values_now, inputs=[], outputs=[ctx.checkpoint_dropdown, *components], queue=False,
                       show_progress="hidden")
    tab_settings.publish_options(loaded, ctx.settings_json)  # then the page's `opts` and onOptionsChanged
