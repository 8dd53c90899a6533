"""The Extra Networks card tabs in a real browser: search, sort, subfolders, a card click putting its text into the
prompt (and taking it out again), the metadata editor writing NAME.json, a checkpoint card switching the model, the
demo LoRA's card putting its tag into the prompt and a Generate using it."""
import json
import os
import re

import pytest

from tests.shared_webui import STARTUP_CHECKPOINT, use_checkpoint
from tests.webui_server import chromium_available, launch_browser, set_number

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]

# What the cards show comes from the shared server's data folder (tests/shared_webui.py): styles/other.safetensors
# with its preview, the embeddings ink, alpha and sub/zeta (64 wide, as the demo model's text encoder), the demo LoRA.


def visible_names(page, pane):
    return page.locator(f"#{pane}_cards .card").evaluate_all(
        "cards => cards.filter(c => c.style.display !== 'none').map(c => c.dataset.name)")


def open_tab(page, tabname, title):
    page.locator(f"#{tabname}_extra_tabs button[role=tab]", has_text=title).click()


@pytest.fixture
def page(shared_webui):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(shared_webui.url)
        yield page
        browser.close()


def test_card_pages_search_sort_click_edit_and_select(page, shared_webui):
    from playwright.sync_api import expect
    # a user's own checkpoint is chosen at start-up before the built-in demo one (listed first)
    with open(shared_webui.log_path) as log:
        first_loaded = next(line for line in log if line.startswith("Model loaded: "))
    assert first_loaded.startswith(f"Model loaded: {STARTUP_CHECKPOINT}"), first_loaded
    use_checkpoint(page, "styles/other.safetensors")  # a demo-sized text encoder, which the embeddings fit
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill("a red circle")

    # the Textual Inversion page: its cards arrive when the tab is opened
    open_tab(page, "txt2img", "Textual Inversion")
    pane = "txt2img_textual_inversion"
    expect(page.locator(f"#{pane}_cards .card")).to_have_count(3, timeout=60000)
    expect(page.locator(f"#{pane}_pane .extra-network-count")).to_have_text("3 items")

    page.locator(f"#{pane}_extra_search").fill("zet")
    expect(page.locator(f"#{pane}_pane .extra-network-count")).to_have_text("1 of 3")
    assert visible_names(page, pane) == ["zeta"]
    page.locator(f"#{pane}_extra_search").fill("")
    page.locator(f"#{pane}_subdirs button[data-dir=sub]").click()
    assert visible_names(page, pane) == ["zeta"]
    page.locator(f"#{pane}_subdirs button[data-dir='']").click()
    assert sorted(visible_names(page, pane)) == ["alpha", "ink", "zeta"]

    page.locator(f"#{pane}_extra_sort").select_option("name")
    assert visible_names(page, pane) == ["alpha", "ink", "zeta"]
    page.locator(f"#{pane}_extra_sort_dir").click()
    assert visible_names(page, pane) == ["zeta", "ink", "alpha"]

    # a click adds the embedding's name; a second click takes it out again
    card = page.locator(f"#{pane}_cards .card[data-name=ink]")
    card.click()
    expect(prompt).to_have_value("a red circle ink")
    card.click()
    expect(prompt).to_have_value("a red circle")
    prompt.fill("a pink circle")  # a word that contains the name is not the name
    card.click()
    expect(prompt).to_have_value("a pink circle ink")
    card.click()
    expect(prompt).to_have_value("a pink circle")
    # with the cursor last in the negative prompt, an embedding goes there
    negative = page.locator("#txt2img_neg_prompt textarea")
    negative.click()
    card.click()
    expect(negative).to_have_value("ink")
    expect(prompt).to_have_value("a pink circle")

    # the editor writes NAME.json; the card then shows the description
    card.hover()
    card.locator(".edit-button").click()
    editor = page.locator("#txt2img_extra_networks_editor")
    expect(editor).to_be_visible(timeout=20000)
    expect(page.locator("#txt2img_extra_networks_editor_activation_text")).to_be_hidden()  # a LoRA field
    page.locator("#txt2img_extra_networks_editor_description textarea").fill("Blue ink strokes")
    page.locator("#txt2img_extra_networks_editor_notes textarea").fill("from the test")
    page.locator("#txt2img_extra_networks_editor_save").click()
    expect(page.locator(f"#{pane}_cards .card[data-name=ink] .description")).to_have_text("Blue ink strokes", timeout=20000)
    expect(editor).to_be_hidden()
    with open(os.path.join(shared_webui.data_dir, "embeddings", "ink.json"), encoding="utf8") as file:
        assert json.load(file) == {"description": "Blue ink strokes", "notes": "from the test"}
    # the search text, folder and order the user chose survive the page being redrawn
    assert visible_names(page, pane) == ["zeta", "ink", "alpha"]

    # a checkpoint card switches the model
    open_tab(page, "txt2img", "Checkpoints")
    other = page.locator("#txt2img_checkpoints_cards .card[data-name=other]")
    preview = other.locator("img.preview")
    preview.wait_for(timeout=60000)
    assert "other.preview.png" in preview.get_attribute("src")
    page.wait_for_function("img => img.complete && img.naturalWidth === 32", arg=preview.element_handle(), timeout=20000)
    page.locator("#txt2img_checkpoints_cards .card[data-name=demo-shapes]").click()
    expect(page.locator("#setting_sd_model_checkpoint input")).to_have_value(re.compile(r"^demo-shapes\.safetensors"), timeout=60000)



def test_the_demo_lora_card_puts_its_tag_in_the_prompt_and_generate_uses_it(page):
    from playwright.sync_api import expect
    use_checkpoint(page, "demo-shapes")  # the model the demo LoRA was trained for
    expect(page.locator("#setting_sd_model_checkpoint input")).to_have_value(re.compile(r"demo-shapes|other"), timeout=60000)
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill("a large star in the centre on a black background")
    for elem_id, value in (("txt2img_width", 64), ("txt2img_height", 64), ("txt2img_steps", 4)):
        set_number(page, elem_id, value)
    open_tab(page, "txt2img", "Lora")
    card = page.locator("#txt2img_lora_cards .card[data-name=demo-turquoise]")
    expect(card.locator("img.preview")).to_have_attribute("src", re.compile(r"demo-turquoise\.preview\.png"), timeout=60000)
    card.click()  # the default multiplier (1) and the card's activation text
    expect(prompt).to_have_value("a large star in the centre on a black background <lora:demo-turquoise:1> turquoise")
    page.locator("#txt2img_generate").click()  # the Generate button is above the tabs
    open_tab(page, "txt2img", "Generation")  # the results are in the Generation tab, as in A1111
    info = page.locator("#html_info_txt2img")
    info.get_by_text("Lora hashes").wait_for(timeout=120000)
    assert re.search(r'Lora hashes: "demo-turquoise: [0-9a-f]{12}"', info.inner_text()), info.inner_text()
    assert "<lora:demo-turquoise:1> turquoise" in info.inner_text()  # the tag is kept in the infotext's prompt
