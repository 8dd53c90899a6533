"""The walking skeleton in a real browser: type a prompt, press Generate, get an image and its infotext."""
import os
import re

import pytest

from tests.checkpoint_factory import make_tiny_sd1_checkpoint
from tests.webui_server import WebuiServer, chromium_available, launch_browser, set_number

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]


def test_prompt_generate_image_and_infotext(tmp_path):
    from playwright.sync_api import sync_playwright
    ckpt_dir = tmp_path / "models" / "Stable-diffusion"
    ckpt_dir.mkdir(parents=True)
    make_tiny_sd1_checkpoint(str(ckpt_dir / "tiny.safetensors"))
    with WebuiServer(tmp_path) as server, sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(server.url)
        from playwright.sync_api import expect
        expect(page.locator("#setting_sd_model_checkpoint input")).to_have_value(re.compile(r"^tiny\.safetensors"), timeout=30000)
        page.locator("#txt2img_prompt textarea").fill("a red circle")
        set_number(page, "txt2img_width", 64)
        set_number(page, "txt2img_height", 64)
        set_number(page, "txt2img_steps", 4)
        set_number(page, "txt2img_seed", 1234)
        page.locator("#txt2img_generate").click()
        info = page.locator("#html_info_txt2img")
        info.get_by_text("Steps: 4").wait_for(timeout=120000)
        text = info.inner_text()
        assert "a red circle" in text
        assert "Seed: 1234" in text and "Size: 64x64" in text and "Model: tiny" in text
        assert page.locator("#txt2img_gallery img").count() >= 1
        saved = [f for dp, _, fs in os.walk(tmp_path / "outputs" / "txt2img-images") for f in fs if f.endswith(".png")]
        assert saved == ["00000-1234.png"]
        browser.close()
