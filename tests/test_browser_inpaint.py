"""In the browser: upload a picture into img2img → Inpaint, paint a mask with the brush, Generate; the saved result is
repainted where the brush went and bit-identical far from it."""
import glob
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from tests.checkpoint_factory import make_tiny_sd1_checkpoint
from tests.webui_server import WebuiServer, chromium_available, launch_browser, set_number

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]

SIZE = 64


def image_rect_on_canvas(page, editor_id):
    """Where the SIZE x SIZE picture is drawn: the editor fits it, centred, in its canvas."""
    canvas = page.locator(f"#{editor_id} canvas").first.bounding_box()
    scale = min(canvas["width"], canvas["height"]) / SIZE
    left = canvas["x"] + (canvas["width"] - SIZE * scale) / 2
    top = canvas["y"] + (canvas["height"] - SIZE * scale) / 2
    return left, top, scale


def paint_square(page, editor_id, x1, y1, x2, y2):
    """Brush strokes covering the picture's square (x1, y1)-(x2, y2), in picture pixels."""
    left, top, scale = image_rect_on_canvas(page, editor_id)
    for y in np.arange(y1, y2, 1.0):
        page.mouse.move(left + x1 * scale, top + y * scale)
        page.mouse.down()
        page.mouse.move(left + x2 * scale, top + y * scale, steps=8)
        page.mouse.up()


def test_paint_a_mask_and_inpaint(tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError, sync_playwright
    models = tmp_path / "models" / "Stable-diffusion"
    models.mkdir(parents=True)
    make_tiny_sd1_checkpoint(str(models / "tiny.safetensors"))
    out_dir = tmp_path / "img2img-out"
    (tmp_path / "config.json").write_text(json.dumps({"outdir_img2img_samples": str(out_dir)}))
    source = tmp_path / "input.png"
    original = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(original).save(source)

    with WebuiServer(tmp_path) as server, sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(server.url)
        page.get_by_role("tab", name="img2img", exact=True).click()
        page.get_by_role("tab", name="Inpaint", exact=True).click()
        editor = page.locator("#img2maskimg")
        editor.get_by_text("Upload an image").wait_for()
        brush_size = editor.locator("button[aria-label='Brush Size']")
        for _ in range(12):  # an upload made while the editor's canvas still initialises is dropped: try again
            editor.locator("input[type=file]").set_input_files(str(source))
            try:
                brush_size.wait_for(timeout=10000)  # the brush is chosen once the picture is in
                break
            except PlaywrightTimeoutError:
                continue
        time.sleep(1.0)  # and the canvas takes the picture's size
        brush_size.click()
        editor.locator("input[type=range]").fill("2")
        page.keyboard.press("Escape")
        paint_square(page, "img2maskimg", 27, 27, 37, 37)

        page.locator("#img2img_prompt textarea").fill("a red circle")
        set_number(page, "img2img_width", SIZE)
        set_number(page, "img2img_height", SIZE)
        set_number(page, "img2img_steps", 3)
        page.locator("#img2img_generate").click()
        page.locator("#html_info_img2img .infotext, #html_log_img2img .error").first.wait_for(timeout=180000)
        log = page.locator("#html_log_img2img").inner_text()
        browser.close()

    saved = glob.glob(os.path.join(str(out_dir), "**", "*.png"), recursive=True)
    assert len(saved) == 1, f"expected one saved result; log: {log!r}"
    result = Image.open(saved[0])
    info = result.info.get("parameters", "")
    assert "Mask blur: 4" in info and "Denoising strength: 0.75" in info
    out = np.asarray(result.convert("RGB"))
    assert out.shape == original.shape
    changed = np.any(out != original, axis=-1)
    assert changed[29:35, 29:35].all(), "the painted square was repainted"
    ys, xs = np.nonzero(changed)
    where = f"changed pixels span x {xs.min()}-{xs.max()}, y {ys.min()}-{ys.max()}"
    assert not changed[:12, :].any() and not changed[52:, :].any(), f"pixels far from the brush are untouched; {where}"
    assert not changed[:, :12].any() and not changed[:, 52:].any(), where
