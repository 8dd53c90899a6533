"""Real extensions in the real web UI, in a real browser: Config Presets sets the fields a preset names; tag
autocomplete answers on its API route and pops up suggestions while typing in the prompt box; an extension's
on_app_started adds a route and its on_ui_tabs a tab; broken extensions beside them are reported by name and the
app starts anyway; Apply settings saves a change to every kind of option, ours and extensions'; State brings the
fields it remembers back after a reload.

One server for the file: a data dir with the tiny checkpoint and the extensions in <data-dir>/extensions/, the
corpus ones copied unmodified, as a user would drop them there.
"""
import json
import re
import time
import urllib.error
import urllib.request

import pytest

from tests.checkpoint_factory import make_tiny_sd1_checkpoint
from tests.extension_helpers import copy_corpus_extension, write_extension
from tests.extension_sources import BROKEN_AT_IMPORT, BROKEN_IN_CALLBACKS, BROKEN_IN_UI, RECORDER
from tests.webui_server import WebuiServer, chromium_available, launch_browser, wait_until_settings_are_current

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]

# An extension's options of the kinds the built-in ones lack: a checkbox group that declares no choices (its saved
# values are its only ones) and a radio whose choices come from a function.
SETTINGS_KINDS = '''
from modules import script_callbacks, shared


def settings():
    section = ("settings-kinds", "Settings kinds")
    shared.opts.add_option("kinds_tags", shared.OptionInfo(["alpha", "beta"], "Tags", "CheckboxGroup", {"choices": []}, section=section))
    shared.opts.add_option("kinds_mode", shared.OptionInfo("fast", "Mode", "Radio", lambda: {"choices": ["fast", "slow"]}, section=section))


script_callbacks.on_ui_settings(settings)
'''

# Extension javascript recording what A1111's page gives it: the load order of its files, the events it waits for.
JS_RECORDER = {
    "javascript/b_events.js": """
        window.jsLoadOrder = (window.jsLoadOrder || []).concat(["b_events.js", typeof gradioApp]);
        window.jsEvents = [];
        document.addEventListener("DOMContentLoaded", () => jsEvents.push("DOMContentLoaded"));
        onUiLoaded(() => jsEvents.push("uiLoaded"));
        onUiUpdate(() => { if (!jsEvents.includes("uiUpdate")) jsEvents.push("uiUpdate"); });
        onAfterUiUpdate(() => { if (!jsEvents.includes("afterUiUpdate")) jsEvents.push("afterUiUpdate"); });
        onUiTabChange(() => jsEvents.push("tabChange:" + get_uiCurrentTabContent().id));
        onOptionsChanged(() => jsEvents.push("optionsChanged:" + opts.kinds_mode));
        titles["Generate"] = "Makes the picture";
    """,
    "javascript/a_first.js": "window.jsLoadOrder = (window.jsLoadOrder || []).concat(['a_first.js']);\n",
    "javascript/c_module.mjs": "window.jsLoadOrder = (window.jsLoadOrder || []).concat(['c_module.mjs']);\n",
}

LOW_QUALITY = "Low quality ------ steps: 10, batch size: 8, DPM++ 2M"  # one of Config Presets' default presets


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("webui-ext")
    (data_dir / "models" / "Stable-diffusion").mkdir(parents=True)
    make_tiny_sd1_checkpoint(str(data_dir / "models" / "Stable-diffusion" / "tiny.safetensors"))
    (data_dir / "extensions").mkdir()
    for name in ("Config-Presets", "a1111-sd-webui-tagcomplete", "stable-diffusion-webui-state"):
        copy_corpus_extension(str(data_dir / "extensions"), name)
    # What the State extension remembers is chosen in Settings; a user picked the prompt, the steps and the tab.
    # Clip skip sits in the quicksettings row (a user's choice), where a new page must show its value as it is now.
    (data_dir / "config.json").write_text(json.dumps({"state": ["tabs"], "state_txt2img": ["prompt", "sampling_steps"],
                                                      "quicksettings_list": ["sd_model_checkpoint", "CLIP_stop_at_last_layers"]}))
    write_extension(str(data_dir / "extensions"), "recorder", {"scripts/recorder.py": RECORDER})
    write_extension(str(data_dir / "extensions"), "settings-kinds", {"scripts/kinds.py": SETTINGS_KINDS, **JS_RECORDER})
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
        wait_until_settings_are_current(page)  # these tests change settings
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


def open_settings_section(page, title):
    """Click a section of the Settings tab, through the tab row's overflow menu when it does not fit."""
    exact = re.compile(f"^{re.escape(title)}$")
    tab = page.locator("#settings_tabs [role=tab]").filter(has_text=exact)
    if tab.count() == 0:
        page.locator("#settings_tabs .overflow-menu > button").click()
        tab = page.locator("#settings_tabs .overflow-dropdown button").filter(has_text=exact)
    tab.first.click()


def choice_box(page, key, label):
    return page.locator(f"#setting_{key} label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).locator("input")


def test_apply_settings_saves_a_change_to_every_kind_of_option(page, server):
    from playwright.sync_api import expect
    page.get_by_role("tab", name="Settings").click()
    result = page.locator("#settings_result")
    # Nothing changed: every option (a checkbox group whose choices were empty among them) passes as it is.
    page.locator("#settings_submit").click()
    expect(result).to_have_text("Nothing changed.", timeout=30000)

    open_settings_section(page, "System")
    page.locator("#setting_samples_log_stdout input[type=checkbox]").check()  # checkbox
    open_settings_section(page, "Saving images/grids")
    quality = page.locator("#setting_jpeg_quality input[type=number]")  # slider
    quality.fill("55")
    quality.press("Enter")
    page.locator("#setting_samples_format textarea").fill("jpg")  # textbox
    page.locator("#setting_save_images_replace_action label").filter(has_text="Add number suffix").click()  # radio
    page.locator("#setting_grid_background_color button.dialog-button").click()  # colour
    hex_box = page.locator("#setting_grid_background_color .input-wrap input")
    hex_box.fill("#ff0000")
    hex_box.press("Enter")
    page.locator("#setting_grid_background_color [data-testid=block-info]").click()
    open_settings_section(page, "VAE")
    page.locator("#setting_sd_vae input").click()  # dropdown whose choices come from a function
    page.get_by_role("option", name="None", exact=True).click()
    open_settings_section(page, "Prompt editing")
    choice_box(page, "keyedit_delimiters_whitespace", "Tab").uncheck()  # checkbox group with fixed choices
    open_settings_section(page, "Upscaling")
    choice_box(page, "realesrgan_enabled_models", "R-ESRGAN 2x+").check()  # the one whose empty choices broke Apply
    open_settings_section(page, "Settings kinds")
    choice_box(page, "kinds_tags", "beta").uncheck()  # an extension's checkbox group without choices
    page.locator("#setting_kinds_mode label").filter(has_text="slow").click()  # an extension's radio from a function
    page.locator("#settings_submit").click()
    expect(result).to_contain_text("10 settings changed", timeout=30000)
    # The page's `opts` follow and extensions' onOptionsChanged callbacks see the new value.
    page.wait_for_function("jsEvents.includes('optionsChanged:slow')", timeout=30000)

    with open(f"{server.data_dir}/config.json") as file:
        saved = json.load(file)
    assert saved["samples_log_stdout"] is True and saved["jpeg_quality"] == 55 and saved["samples_format"] == "jpg"
    assert saved["save_images_replace_action"] == "Add number suffix" and saved["grid_background_color"] == "#ff0000"
    assert saved["sd_vae"] == "None" and saved["keyedit_delimiters_whitespace"] == ["Carriage Return", "Line Feed"]
    assert saved["realesrgan_enabled_models"] == ["R-ESRGAN 4x+", "R-ESRGAN 4x+ Anime6B", "R-ESRGAN 2x+"]
    assert saved["kinds_tags"] == ["alpha"] and saved["kinds_mode"] == "slow"

    # a page opened now shows the applied values, not those the page was built with at start-up
    second = page.context.browser.new_page()
    try:
        second.goto(server.url)
        second.get_by_role("tab", name="Settings").click()
        open_settings_section(second, "Saving images/grids")
        expect(second.locator("#setting_jpeg_quality input[type=number]")).to_have_value("55", timeout=30000)
        expect(second.locator("#setting_samples_format textarea")).to_have_value("jpg")
        open_settings_section(second, "Settings kinds")
        expect(choice_box(second, "kinds_tags", "beta")).not_to_be_checked()
    finally:
        second.close()


def test_apply_in_a_page_left_open_keeps_settings_changed_since_in_another_page(page, server):
    from playwright.sync_api import expect
    page.get_by_role("tab", name="Settings").click()
    open_settings_section(page, "Saving images/grids")
    quality = page.locator("#setting_jpeg_quality input[type=number]")
    shown_before = quality.input_value()
    other = page.context.browser.new_page()
    try:
        other.goto(server.url)
        wait_until_settings_are_current(other)
        other.get_by_role("tab", name="Settings").click()
        open_settings_section(other, "Saving images/grids")
        other_quality = other.locator("#setting_jpeg_quality input[type=number]")
        other_quality.fill("66" if shown_before != "66" else "67")
        other_quality.press("Enter")
        other.locator("#settings_submit").click()
        expect(other.locator("#settings_result")).to_contain_text("1 setting changed: jpeg_quality", timeout=30000)
        wanted_quality = int(other_quality.input_value())
    finally:
        other.close()
    # The first page still shows the old quality; the user edits another setting there and applies.
    expect(quality).to_have_value(shown_before)
    side = page.locator("#setting_target_side_length input[type=number]")
    side.fill(str(int(float(side.input_value())) + 100))
    side.press("Enter")
    page.locator("#settings_submit").click()
    expect(page.locator("#settings_result")).to_contain_text("1 setting changed: target_side_length", timeout=30000)
    with open(f"{server.data_dir}/config.json") as file:
        assert json.load(file)["jpeg_quality"] == wanted_quality  # not put back to what the first page showed
    expect(quality).to_have_value(str(wanted_quality), timeout=30000)  # and the first page now shows it


def test_a_page_opened_later_shows_the_quicksettings_and_opts_as_they_are_now(page):
    from playwright.sync_api import expect
    clip_skip = page.locator("#setting_CLIP_stop_at_last_layers input[type=number]")
    expect(clip_skip).to_have_value("1")
    clip_skip.fill("2")
    clip_skip.press("Enter")
    clip_skip.blur()
    expect(page.locator("#quicksettings_status")).to_contain_text("saved", timeout=30000)
    second = page.context.browser.new_page()
    try:
        second.goto(page.url)
        expect(second.locator("#setting_CLIP_stop_at_last_layers input[type=number]")).to_have_value("2", timeout=60000)
        second.wait_for_function("() => window.opts && window.opts.CLIP_stop_at_last_layers === 2", timeout=30000)
    finally:
        second.close()
        clip_skip.fill("1")  # as the other tests expect it
        clip_skip.press("Enter")
        clip_skip.blur()


def test_extension_javascript_loads_in_a1111_order_and_gets_every_page_event(page):
    # Our runtime first, then the extension's .js files by name, then its .mjs modules.
    page.wait_for_function("window.jsLoadOrder && jsLoadOrder.length === 4", timeout=30000)
    assert page.evaluate("jsLoadOrder") == ["a_first.js", "b_events.js", "function", "c_module.mjs"]
    # DOMContentLoaded reaches it although Gradio adds the page head (and with it this script) after that event.
    page.wait_for_function("['DOMContentLoaded', 'uiLoaded', 'uiUpdate', 'afterUiUpdate'].every(e => jsEvents.includes(e))",
                           timeout=30000)
    page.get_by_role("tab", name="img2img").first.click()
    page.wait_for_function("jsEvents.includes('tabChange:tab_img2img')", timeout=30000)
    page.wait_for_function("document.querySelector('#txt2img_generate').title === 'Makes the picture'",
                           timeout=30000)


def test_a1111_javascript_helpers_behave_as_in_a1111(page):
    page.wait_for_function("typeof switch_to_img2img === 'function'", timeout=30000)
    assert page.evaluate("switch_to_img2img(1, 'x')") == [1, "x"]  # passes its arguments through
    page.wait_for_function("get_uiCurrentTabContent().id === 'tab_img2img'", timeout=30000)
    page.evaluate("switch_to_txt2img()")
    page.wait_for_function("get_uiCurrentTabContent().id === 'tab_txt2img'", timeout=30000)
    assert page.evaluate("get_tab_index('tabs')") == 0
    assert page.evaluate("/^task\\([a-z0-9]{5,15}\\)$/.test(randomId())")
    assert page.evaluate("create_submit_args(['id', 1, [1, 2], 'info', 'html'])") == ["id", 1, None, "info", "html"]
    assert page.evaluate("args_to_array((function() { return arguments; })(1, 2))") == [1, 2]
    assert page.evaluate("selected_gallery_index()") == -1  # nothing generated yet
    assert page.evaluate("getTranslation('no such text')") is None
    for name in ("gradioApp", "requestProgress", "updateInput", "submit", "submit_img2img", "switch_to_extras",
                 "dimensionChange", "onOptionsChanged", "localSet", "showSubmitButtons"):
        assert page.evaluate(f"typeof {name}") == "function", name
    from playwright.sync_api import expect
    width, height = page.locator("#txt2img_width input[type=number]"), page.locator("#txt2img_height input[type=number]")
    width.fill("456")
    width.press("Enter")
    old_height = height.input_value()
    page.evaluate("switchWidthHeight('txt2img')")  # the ⇅ of extensions' own tabs (mov2mov)
    expect(width).to_have_value(old_height)
    expect(height).to_have_value("456")


def test_state_brings_the_remembered_fields_back_after_a_reload(page):
    from playwright.sync_api import expect
    page.wait_for_function("window.state && state.core", timeout=30000)  # its javascript read its config
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill("a state test prompt")
    prompt.press("Tab")
    steps = page.locator("#txt2img_steps input[type=number]")
    steps.fill("33")
    steps.press("Enter")
    page.wait_for_timeout(1000)
    page.reload()
    expect(page.locator("#txt2img_prompt textarea")).to_have_value("a state test prompt", timeout=60000)
    expect(page.locator("#txt2img_steps input[type=number]")).to_have_value("33", timeout=30000)
