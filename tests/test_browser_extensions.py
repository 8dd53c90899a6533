"""Real extensions in the real web UI, in a real browser: Config Presets sets the fields a preset names; tag
autocomplete answers on its API route and pops up suggestions while typing in the prompt box.

One server for the file: a data dir with the tiny checkpoint and both extensions copied, unmodified, from the corpus
into <data-dir>/extensions/, as a user would drop them there.
"""
import urllib.request

import pytest

from tests.checkpoint_factory import make_tiny_sd1_checkpoint
from tests.extension_helpers import copy_corpus_extension
from tests.webui_server import WebuiServer, chromium_available, launch_browser

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]

LOW_QUALITY = "Low quality ------ steps: 10, batch size: 8, DPM++ 2M"  # one of Config Presets' default presets


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("webui-ext")
    (data_dir / "models" / "Stable-diffusion").mkdir(parents=True)
    make_tiny_sd1_checkpoint(str(data_dir / "models" / "Stable-diffusion" / "tiny.safetensors"))
    (data_dir / "extensions").mkdir()
    for name in ("Config-Presets", "a1111-sd-webui-tagcomplete"):
        copy_corpus_extension(str(data_dir / "extensions"), name)
    with WebuiServer(data_dir) as running:
        yield running


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page_errors = []
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.goto(server.url)
        page.locator("#txt2img_prompt textarea").wait_for(timeout=60000)
        yield page
        browser.close()
        assert page_errors == [], f"javascript errors on the page: {page_errors}"


def test_extensions_load_without_error_reports(server):
    log = server.read_log()
    assert "Error loading script" not in log and "Error executing callback" not in log and "Error calling" not in log


def test_config_presets_preset_sets_the_fields_it_names(page):
    from playwright.sync_api import expect
    steps = page.locator("#txt2img_steps input[type=number]")
    expect(steps).to_have_value("20", timeout=30000)
    dropdown = page.locator("#config_preset_txt2img_dropdown input")
    dropdown.click()
    page.get_by_role("option", name=LOW_QUALITY).click()
    expect(steps).to_have_value("10", timeout=30000)
    expect(page.locator("#txt2img_batch_size input[type=number]")).to_have_value("8")
    expect(page.locator("#txt2img_batch_count input[type=number]")).to_have_value("1")
    expect(page.locator("#txt2img_sampling input")).to_have_value("DPM++ 2M")
    # A field the preset does not name keeps its value.
    expect(page.locator("#txt2img_cfg_scale input[type=number]")).to_have_value("7")


def test_tag_autocomplete_api_route_answers(server):
    with urllib.request.urlopen(f"{server.url}/tacapi/v1/get-use-count?tagname=1girl&ttype=0&neg=false", timeout=30) as response:
        assert response.status == 200
    # Its javascript reads its tag list through Gradio 3's /file= URLs (relative to the web UI root, and absolute).
    with urllib.request.urlopen(f"{server.url}/file=tmp/tagAutocompletePath.txt?1", timeout=30) as response:
        assert response.read().decode().endswith("a1111-sd-webui-tagcomplete/tags")
    tags_dir = f"{server.data_dir}/extensions/a1111-sd-webui-tagcomplete/tags"
    with urllib.request.urlopen(f"{server.url}/file={tags_dir}/danbooru.csv?1", timeout=30) as response:
        assert b"1girl" in response.read(4096)


def test_tag_autocomplete_suggests_while_typing_in_the_prompt(page):
    from playwright.sync_api import expect
    prompt = page.locator("#txt2img_prompt textarea")
    # The extension is ready once it has attached to the prompt box and read its tag list (a large CSV).
    page.wait_for_function("document.querySelector('#txt2img_prompt textarea').classList.contains('autocomplete')"
                           " && allTags.length > 0", timeout=60000)
    prompt.click()
    prompt.press_sequentially("a photo of 1gi", delay=60)
    popup = page.locator(".autocompleteResults").filter(has_text="1girl").first
    expect(popup).to_be_visible(timeout=30000)
    # Tab takes the first suggestion (its default keymap): the word is completed in the prompt.
    prompt.press("Tab")
    expect(prompt).to_have_value("a photo of 1girl, ", timeout=10000)
