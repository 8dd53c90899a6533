"""Settings -> Reload UI: the page is rebuilt with scripts reloaded, on_before_reload and on_script_unloaded fire,
and the same process answers again on the same port."""
import os
import time
import urllib.request

import pytest

from tests.extension_helpers import write_extension
from tests.webui_server import WebuiServer, chromium_available, launch_browser

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]

MARKER_SCRIPT = '''
import os
from modules import script_callbacks

MARKERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "markers")
os.makedirs(MARKERS, exist_ok=True)


def mark(name):
    with open(os.path.join(MARKERS, name), "a") as f:
        f.write(f"{os.getpid()}\\n")


mark("loaded")
script_callbacks.on_before_reload(lambda: mark("before_reload"))
script_callbacks.on_script_unloaded(lambda: mark("script_unloaded"))
'''


def read_marker(markers, name):
    path = os.path.join(markers, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().split()


def wait_until(condition, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def page_answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_reload_ui_reloads_scripts_in_the_same_process(tmp_path):
    from playwright.sync_api import expect, sync_playwright
    ext = write_extension(str(tmp_path / "extensions"), "reload-markers", {"scripts/markers.py": MARKER_SCRIPT})
    markers = os.path.join(ext, "markers")
    with WebuiServer(tmp_path) as server, sync_playwright() as pw:
        pid = str(server.process.pid)
        assert read_marker(markers, "loaded") == [pid]
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(server.url)
        page.get_by_role("tab", name="Settings").click()
        page.locator("#settings_restart_gradio").click()

        assert wait_until(lambda: len(read_marker(markers, "loaded")) == 2), server.read_log()
        assert wait_until(lambda: page_answers(server.url)), server.read_log()
        assert read_marker(markers, "before_reload") == [pid]
        assert read_marker(markers, "script_unloaded") == [pid]
        assert read_marker(markers, "loaded") == [pid, pid]
        assert server.process.poll() is None

        # the rebuilt page works: tabs are there and the Settings tab's Reload UI button is back
        page.goto(server.url)
        expect(page.locator("#txt2img_prompt textarea")).to_be_visible(timeout=60000)
        page.get_by_role("tab", name="Settings").click()
        expect(page.locator("#settings_restart_gradio")).to_be_visible(timeout=30000)
        browser.close()
