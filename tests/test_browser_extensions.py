"""Real extensions in the real web UI, in a real browser: Config Presets sets the fields a preset names; tag
autocomplete answers on its API route and pops up suggestions while typing in the prompt box; an extension's
on_app_started adds a route and its on_ui_tabs a tab; broken extensions beside them are reported by name and the
app starts anyway.

One server for the file: a data dir with the tiny checkpoint and the extensions in <data-dir>/extensions/, the
corpus ones copied unmodified, as a user would drop them there.
"""
import json
import time
import urllib.error
import urllib.request

import pytest

from tests.checkpoint_factory import make_tiny_sd1_checkpoint
from tests.extension_helpers import copy_corpus_extension, write_extension
from tests.extension_sources import BROKEN_AT_IMPORT, BROKEN_IN_CALLBACKS, BROKEN_IN_UI, RECORDER
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
    write_extension(str(data_dir / "extensions"), "recorder", {"scripts/recorder.py": RECORDER})
    write_extension(str(data_dir / "extensions"), "broken", {"scripts/bad.py": BROKEN_AT_IMPORT, "scripts/bad_ui.py": BROKEN_IN_UI,
                                                             "scripts/bad_cb.py": BROKEN_IN_CALLBACKS})
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


def error_reports(log):
    return [block for block in log.split("*** ")[1:] if block.startswith("Error")]


def test_only_the_broken_extension_is_reported_and_the_app_starts(server):
    log = server.read_log()
    reports = error_reports(log)
    assert reports, "the broken extension should be reported"
    assert all("broken" in report.split("\n", 1)[0] or "/broken/" in report for report in reports), reports
    assert "broken at import" in log and "broken in ui" in log and "broken-callbacks" not in log
    assert "broken/bad_cb.py/ui_settings" in log


def recorded_events(server):
    """The recorder's log, from the route its on_app_started added; [] until that route exists (the page answers
    as soon as Gradio launches, a moment before on_app_started runs, as in A1111)."""
    try:
        with urllib.request.urlopen(f"{server.url}/recorder/events", timeout=30) as response:
            return [tuple(e) for e in json.load(response)]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def test_app_started_lets_an_extension_add_routes_and_other_startup_callbacks_fired(server):
    deadline = time.time() + 60
    events = recorded_events(server)
    while ("model_loaded", "tiny") not in events and time.time() < deadline:  # the model loads in the background
        time.sleep(0.5)
        events = recorded_events(server)
    assert ("app_started", "True") in events
    for name in ("before_ui", "ui_tabs", "ui_settings"):
        assert (name,) in events
    assert ("model_loaded", "tiny") in events
    assert ("script_after_component", "txt2img", "txt2img_steps") in events


def test_an_extension_tab_shows_in_the_page(page):
    from playwright.sync_api import expect
    page.get_by_role("tab", name="Recorder").click()
    expect(page.locator("#recorder_tab_text")).to_be_visible(timeout=30000)


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
    url = f"{server.url}/tacapi/v1/get-use-count?tagname=1girl&ttype=0&neg=false"
    deadline = time.time() + 60
    while True:  # its on_app_started adds the route a moment after the page first answers
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                assert response.status == 200
                break
        except urllib.error.HTTPError as e:
            if e.code != 404 or time.time() > deadline:
                raise
            time.sleep(0.5)
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
