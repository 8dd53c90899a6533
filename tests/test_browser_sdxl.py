"""SDXL in a real browser: picking an SDXL checkpoint sets 1024x1024 and generates; the Refiner accordion switches to
the refiner at the fraction given, and the infotext says so; img2img's Refiner accordion takes it from the infotext."""
import re

import pytest

from tests.shared_webui import use_checkpoint
from tests.webui_server import chromium_available, launch_browser, pick_option, set_number

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]


def test_sdxl_checkpoint_sets_its_size_and_the_refiner_switches(shared_webui):
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(shared_webui.url)
        use_checkpoint(page, "tiny.safetensors")  # an SD1 checkpoint: 512x512
        expect(page.locator("#setting_sd_model_checkpoint input")).to_have_value(re.compile(r"^tiny\.safetensors"), timeout=60000)
        expect(page.locator("#txt2img_width input[type=number]")).to_have_value("512")

        use_checkpoint(page, "xl-base")
        for tab in ("img2img", "txt2img"):  # a tab's controls are drawn once it is shown
            page.get_by_role("tab", name=tab, exact=True).click()
            expect(page.locator(f"#{tab}_width input[type=number]")).to_have_value("1024", timeout=30000)
            expect(page.locator(f"#{tab}_height input[type=number]")).to_have_value("1024")

        page.locator("#txt2img_prompt textarea").fill("a red circle")
        set_number(page, "txt2img_steps", 1)
        set_number(page, "txt2img_seed", 5)
        page.locator("#txt2img_generate").click()
        info = page.locator("#html_info_txt2img")
        info.get_by_text("Size: 1024x1024").wait_for(timeout=300000)
        assert "Model: xl-base" in info.inner_text()

        # the Refiner: open the accordion, pick the refiner, switch halfway through 4 steps at a small size
        set_number(page, "txt2img_width", 64)
        set_number(page, "txt2img_height", 64)
        set_number(page, "txt2img_steps", 4)
        page.locator("#script_txt2img_refiner_enable").get_by_text("Refiner").first.click()
        pick_option(page, "script_txt2img_refiner_checkpoint", "xl-refiner")
        set_number(page, "script_txt2img_refiner_switch_at", 0.5)
        page.locator("#txt2img_generate").click()
        info.get_by_text("Refiner switch at: 0.5").wait_for(timeout=300000)
        text = info.inner_text()
        assert "Refiner: xl-refiner" in text and "Size: 64x64" in text and "Model: xl-base" in text
        # after the job the selected checkpoint is the base again
        expect(page.locator("#setting_sd_model_checkpoint input")).to_have_value(re.compile(r"^xl-base"))
        # a page opened now shows the model loaded now, not the one the page was built with at start-up
        second = browser.new_page()
        second.goto(shared_webui.url)
        expect(second.locator("#setting_sd_model_checkpoint input")).to_have_value(re.compile(r"^xl-base"), timeout=60000)
        second.close()
        # img2img has the same accordion; sending the picture there pastes the infotext's refiner and fraction into it
        page.locator("#txt2img_send_to_img2img").click()
        expect(page.locator("#script_img2img_refiner_checkpoint input")).to_have_value(re.compile(r"^xl-refiner"), timeout=30000)
        expect(page.locator("#script_img2img_refiner_switch_at input[type=number]")).to_have_value("0.5")
        browser.close()
