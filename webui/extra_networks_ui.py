"""The Extra Networks tabs beside "Generation" in txt2img and img2img (A1111: ui_extra_networks.create_ui).

Each registered page gets a tab holding one HTML component. Its cards are made when the tab is first opened (the
page loads with none of them) and again on refresh; search, sort and the subfolder filter then run in the browser.
A checkpoint card asks the server to switch the model; the 🛠️ button on a card opens the metadata editor.
"""
import contextlib
import html
import re

import gradio as gr

from modules import errors, sd_models, shared, ui_extra_networks
from webui import quicksettings
from webui.extra_networks_editor import UserMetadataEditor


class ExtraNetworksUi:
    def __init__(self, tabname):
        self.tabname = tabname
        self.stored_extra_pages = []
        self.pages = []           # one gr.HTML per page, in stored_extra_pages order
        self.related_tabs = []
        self.editor = None


def page_html(page, tabname):
    """The page with all its cards; a fresh listing of its folders. Errors become a message, not a dead tab."""
    try:
        return page.create_html(tabname)
    except Exception as e:
        errors.report(f"Error making the {page.title} cards", exc_info=True)
        return f"<div class='error'>Could not list the {page.title}: {html.escape(f'{type(e).__name__}: {e}')}</div>"


def refreshed_page_html(page, tabname):
    try:
        page.refresh()
    except Exception:
        errors.report(f"Error refreshing the {page.title} page", exc_info=True)
    return page_html(page, tabname)


def create_ui(tabname):
    """Inside an open gr.Tabs: one tab per registered page (in the preferred order); setup_ui adds the rest."""
    ui = ExtraNetworksUi(tabname)
    ui.stored_extra_pages = ui_extra_networks.pages_in_preferred_order(ui_extra_networks.extra_pages.copy())
    for page in ui.stored_extra_pages:
        pane_id = f"{tabname}_{page.extra_networks_tabname}"
        with gr.Tab(page.title, id=pane_id, elem_id=pane_id, elem_classes=["extra-page"], render_children=True) as tab:
            cards = gr.HTML(page.create_html(tabname, empty=True), elem_id=f"{pane_id}_cards_html", js_on_load=None,
                            apply_default_css=False)
            refresh = gr.Button("Refresh", visible="hidden", elem_id=f"{pane_id}_extra_refresh_internal")
        loaded = gr.State(False)

        def load(already_loaded, page=page):
            return (gr.skip(), True) if already_loaded else (page_html(page, tabname), True)

        tab.select(fn=load, inputs=[loaded], outputs=[cards, loaded], queue=False, show_progress="hidden")
        refresh.click(fn=lambda page=page: (refreshed_page_html(page, tabname), True), inputs=[],
                      outputs=[cards, loaded], show_progress="hidden")
        ui.pages.append(cards)
        ui.related_tabs.append(tab)
    return ui


def setup_ui(ui, ctx):
    """Outside the tabs: the metadata editor of this tab's pages, and the checkpoint cards' selector."""
    ui.editor = UserMetadataEditor(ui, redraw=page_html)
    ui.editor.create_ui()
    create_checkpoint_selector(ctx)


def create_checkpoint_selector(ctx):
    """The hidden textbox and button behind selectCheckpoint(name) (one for the whole page)."""
    if ctx.checkpoint_selector is not None or ctx.checkpoint_dropdown is None:
        return
    target = gr.Textbox(visible="hidden", elem_id="change_checkpoint_name")
    button = gr.Button(visible="hidden", elem_id="change_checkpoint")

    def select(name):
        message = quicksettings.switch_checkpoint(name)
        wanted = sd_models.get_closet_checkpoint_match(name)
        loaded = shared.sd_model.sd_checkpoint_info.filename if shared.sd_model is not None else None
        if wanted is None or wanted.filename != loaded:
            gr.Warning(re.sub(r"<[^>]+>", "", message))  # the message says why (HTML for the quicksettings row)
        # the title gains its hash once loaded: the choices are the titles as they are now
        return gr.update(choices=quicksettings.checkpoint_titles(), value=quicksettings.current_checkpoint_title())

    button.click(fn=select, inputs=[target], outputs=[ctx.checkpoint_dropdown], concurrency_limit=1,
                 show_progress="hidden")
    ctx.checkpoint_selector = (target, button)


@contextlib.contextmanager
def beside_generation(tabname, ctx):
    """`with beside_generation(tabname, ctx):` the settings and results go in a "Generation" tab, followed by the
    card tabs. Every tab's content stays in the page when another is selected (extensions' javascript finds it)."""
    with gr.Tabs(elem_id=f"{tabname}_extra_tabs", elem_classes=["extra-networks"]):
        with gr.Tab("Generation", id=f"{tabname}_generation", elem_id=f"{tabname}_generation_tab", render_children=True):
            yield
        ui = create_ui(tabname)
    setup_ui(ui, ctx)
    ctx.extra_networks[tabname] = ui
