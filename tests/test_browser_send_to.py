"""PNG Info -> Send to txt2img / img2img: the image's infotext fills the target tab's fields and that tab opens."""
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.webui_server import chromium_available, launch_browser

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]

INFOTEXT = (
    "a castle on a hill, golden hour\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 17, Sampler: Euler a, Schedule type: Karras, CFG scale: 5.5, Seed: 4242, Size: 320x448, "
    "Model: whatever, Denoising strength: 0.45, Hires upscale: 1.5, Hires steps: 3, Hires upscaler: Latent"
)


def make_png(path):
    info = PngInfo()
    info.add_text("parameters", INFOTEXT)
    Image.new("RGB", (32, 32), (200, 40, 40)).save(path, pnginfo=info)
    return str(path)


def upload_to_pnginfo(page, png):
    from playwright.sync_api import expect
    page.get_by_role("tab", name="PNG Info").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(png)
    expect(page.locator("#pnginfo_html_info")).to_contain_text("Steps: 17", timeout=30000)


@pytest.fixture
def page(shared_webui):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(shared_webui.url)
        yield page
        browser.close()


def test_pnginfo_send_to_txt2img_restores_the_fields(tmp_path, page):
    from playwright.sync_api import expect
    png = make_png(tmp_path / "with_params.png")
    upload_to_pnginfo(page, png)
    page.locator("#tab_pnginfo #txt2img_tab").click()

    expect(page.locator("#tab_txt2img")).to_be_visible(timeout=15000)
    expect(page.locator("#txt2img_prompt textarea")).to_have_value("a castle on a hill, golden hour", timeout=15000)
    expect(page.locator("#txt2img_neg_prompt textarea")).to_have_value("blurry, lowres")
    expect(page.locator("#txt2img_steps input[type=number]")).to_have_value("17")
    expect(page.locator("#txt2img_seed input")).to_have_value("4242")
    expect(page.locator("#txt2img_sampling input")).to_have_value("Euler a")
    expect(page.locator("#txt2img_scheduler input")).to_have_value("Karras")
    expect(page.locator("#txt2img_cfg_scale input[type=number]")).to_have_value("5.5")
    expect(page.locator("#txt2img_width input[type=number]")).to_have_value("320")
    expect(page.locator("#txt2img_height input[type=number]")).to_have_value("448")
    # hires settings: the accordion opens, the checkbox is ticked and its fields filled
    expect(page.locator("#txt2img_enable_hr input[type=checkbox]").first).to_be_checked()
    expect(page.locator("#txt2img_hr_scale input[type=number]")).to_have_value("1.5")
    expect(page.locator("#txt2img_hires_steps input[type=number]")).to_have_value("3")
    expect(page.locator("#txt2img_denoising_strength input[type=number]")).to_have_value("0.45")


def test_pnginfo_send_to_img2img_restores_the_fields_and_image(tmp_path, page):
    from playwright.sync_api import expect
    png = make_png(tmp_path / "with_params.png")
    upload_to_pnginfo(page, png)
    page.locator("#tab_pnginfo #img2img_tab").click()

    expect(page.locator("#tab_img2img")).to_be_visible(timeout=15000)
    expect(page.locator("#img2img_prompt textarea")).to_have_value("a castle on a hill, golden hour", timeout=15000)
    expect(page.locator("#img2img_neg_prompt textarea")).to_have_value("blurry, lowres")
    expect(page.locator("#img2img_steps input[type=number]")).to_have_value("17")
    expect(page.locator("#img2img_seed input")).to_have_value("4242")
    expect(page.locator("#img2img_sampling input")).to_have_value("Euler a")
    expect(page.locator("#img2img_cfg_scale input[type=number]")).to_have_value("5.5")
    expect(page.locator("#img2img_width input[type=number]")).to_have_value("320")
    expect(page.locator("#img2img_height input[type=number]")).to_have_value("448")
    expect(page.locator("#img2img_denoising_strength input[type=number]")).to_have_value("0.45")
    expect(page.locator("#img2img_image img").first).to_be_visible()
