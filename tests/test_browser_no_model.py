"""With no checkpoint (and the shipped demo model's fallback turned off), the UI still starts and Generate says where
to put one."""
import pytest

from tests.webui_server import WebuiServer, chromium_available, launch_browser

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]


def test_generate_without_a_model_names_the_folder(tmp_path):
    from playwright.sync_api import sync_playwright
    with WebuiServer(tmp_path, ["--no-download-sd-model"]) as server, sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(server.url)
        page.locator("#txt2img_prompt textarea").fill("a red circle")
        page.locator("#txt2img_generate").click()
        log = page.locator("#html_log_txt2img")
        log.get_by_text("models").wait_for(timeout=60000)
        text = log.inner_text()
        assert "No Stable Diffusion checkpoint" in text
        assert "Stable-diffusion" in text
        browser.close()
