"""Dragging a result from the txt2img gallery onto img2img's init image puts that picture there."""
import re

import pytest

from tests.shared_webui import generate_on_tiny
from tests.webui_server import chromium_available, launch_browser, set_number

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]

# A dragged <img> carries its URL (text/uri-list and text/html), never a File: what a browser's drag gives.
DROP_IMAGE_URL = """([zoneSelector, src]) => {
    const zone = document.querySelector(zoneSelector + ' input[type=file]').parentElement;
    const transfer = new DataTransfer();
    transfer.setData('text/uri-list', src);
    transfer.setData('text/html', '<img src="' + src + '">');
    for (const type of ['dragenter', 'dragover', 'drop']) {
        zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: transfer}));
    }
}"""


def test_drag_a_gallery_image_onto_the_img2img_init_image(shared_webui):
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(shared_webui.url)
        info = generate_on_tiny(page, "a red circle", width=64, height=96, steps=2)
        expect(page.locator("#setting_sd_model_checkpoint input")).to_have_value(re.compile(r"^tiny"), timeout=30000)
        info.get_by_text("Steps: 2").wait_for(timeout=120000)
        src = page.locator("#txt2img_gallery img").first.get_attribute("src")
        assert src

        page.get_by_role("tab", name="img2img", exact=True).first.click()
        expect(page.locator("#img2img_image input[type=file]")).to_be_attached(timeout=15000)
        page.evaluate(DROP_IMAGE_URL, ["#img2img_image", src])
        expect(page.locator("#img2img_image img")).to_be_visible(timeout=30000)

        # The dropped picture reached the server: img2img runs on it at its own size (64x96).
        page.locator("#img2img_prompt textarea").fill("a blue square")
        set_number(page, "img2img_steps", 2)
        page.locator("#img2img_detect_image_size_btn").click()
        expect(page.locator("#img2img_height input[type=number]")).to_have_value("96", timeout=15000)
        page.locator("#img2img_generate").click()
        info = page.locator("#html_info_img2img")
        info.get_by_text("Denoising strength").wait_for(timeout=120000)
        assert "Size: 64x96" in info.inner_text()
        browser.close()
