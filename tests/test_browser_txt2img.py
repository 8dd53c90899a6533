"""The walking skeleton in a real browser: type a prompt, press Generate, get an image and its infotext."""
import os
import re

import pytest

from tests.shared_webui import generate_on_tiny, infotext, new_pngs, next_number_before, pngs_under
from tests.webui_server import chromium_available, launch_browser

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]


def test_prompt_generate_image_and_infotext(shared_webui):
    from playwright.sync_api import expect, sync_playwright
    outputs = os.path.join(shared_webui.data_dir, "outputs", "txt2img-images")
    before = pngs_under(outputs)
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(shared_webui.url)
        info = generate_on_tiny(page, "a red circle", width=64, height=64, steps=4, seed=1234)
        expect(page.locator("#setting_sd_model_checkpoint input")).to_have_value(re.compile(r"^tiny\.safetensors"), timeout=30000)
        info.get_by_text("Steps: 4").wait_for(timeout=120000)
        text = info.inner_text()
        assert "a red circle" in text
        assert "Seed: 1234" in text and "Size: 64x64" in text and "Model: tiny" in text
        assert page.locator("#txt2img_gallery img").count() >= 1
        # 💾 Save copies it with its infotext into log/images and offers it for download; 🗃️ Zip offers a zip too
        page.locator("#save_txt2img").click()
        expect(page.locator("#html_log_txt2img")).to_contain_text("Saved:", timeout=30000)
        expect(page.locator("#download_files_txt2img")).to_contain_text(".png", timeout=30000)
        page.locator("#save_zip_txt2img").click()
        expect(page.locator("#download_files_txt2img")).to_contain_text(".zip", timeout=30000)
        browser.close()
    kept = pngs_under(os.path.join(shared_webui.data_dir, "log", "images"))
    assert kept and all("Seed: 1234" in infotext(path) for path in kept)
    # one picture saved, named with the folder's next counter and its seed (00000-1234.png in an empty folder)
    saved = new_pngs(outputs, before, "Seed: 1234")
    assert len(saved) == 1, saved
    assert os.path.basename(saved[0]) == f"{next_number_before(saved[0]):05d}-1234.png"


def test_upscale_button_redoes_the_selected_image_with_hires_fix_in_its_place(shared_webui):
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(shared_webui.url)
        info = generate_on_tiny(page, "a blue square", width=64, height=64, steps=2, seed=500, batch_size=2)
        expect(info).to_contain_text("Seed: 500", timeout=120000)
        thumbnails = page.locator("#txt2img_gallery .thumbnail-item.thumbnail-lg")  # (not the preview's strip)
        expect(thumbnails).to_have_count(3, timeout=30000)  # the grid, then the two images
        thumbnails.nth(2).click()
        expect(info).to_contain_text("Seed: 501", timeout=30000)
        page.locator("#txt2img_upscale").click()
        expect(info).to_contain_text("Hires upscale: 2", timeout=120000)
        assert "Seed: 501" in info.inner_text() and "Size: 64x64" in info.inner_text()
        expect(thumbnails).to_have_count(3, timeout=30000)  # the upscaled image took the selected one's place
        sizes = page.evaluate("""() => [...document.querySelectorAll('#txt2img_gallery .thumbnail-lg img')]
                                       .map(img => img.naturalWidth)""")
        assert sizes[2] == 128 and sizes[1] == 64, sizes
        browser.close()
