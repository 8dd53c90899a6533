"""In the browser: upload a picture into img2img → Inpaint, paint a mask with the brush, Generate; the saved result is
repainted where the brush went and bit-identical far from it."""
import os
import re
import time

import numpy as np
import pytest
from PIL import Image

from tests.shared_webui import new_pngs, pngs_under, use_checkpoint
from tests.webui_server import chromium_available, launch_browser, set_number

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]

SIZE = 64


def settled_zoom(page, editor_id, timeout=60.0):
    """The editor's zoom (screen pixels per picture pixel) once its label has stopped changing: after an upload
    the editor zooms to fit the picture, and a stroke placed before that lands elsewhere."""
    label = page.locator(f"#{editor_id} span[role=button]", has_text=re.compile(r"^\d+%$"))
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        text = label.first.inner_text()
        if text == last:
            return int(text.rstrip("%")) / 100
        last = text
        time.sleep(0.5)
    raise TimeoutError(f"the zoom of #{editor_id} kept changing (last {last})")


def image_rect_on_canvas(page, editor_id):
    """Where the SIZE x SIZE picture is drawn: centred in the editor's canvas at the editor's zoom."""
    scale = settled_zoom(page, editor_id)
    canvas = page.locator(f"#{editor_id} canvas").first.bounding_box()
    left = canvas["x"] + (canvas["width"] - SIZE * scale) / 2
    top = canvas["y"] + (canvas["height"] - SIZE * scale) / 2
    return left, top, scale


def paint_square(page, editor_id, x1, y1, x2, y2, row_gap):
    """One serpentine brush stroke over the picture's square (x1, y1)-(x2, y2), in picture pixels, rows row_gap
    apart (the brush must be wider than that). Few pointer events: each costs most of a second in a software-GL
    browser."""
    left, top, scale = image_rect_on_canvas(page, editor_id)
    rows = np.arange(y1, y2 + 1e-6, row_gap)
    page.mouse.move(left + x1 * scale, top + rows[0] * scale)
    page.mouse.down()
    for i, y in enumerate(rows):
        start, end = (x1, x2) if i % 2 == 0 else (x2, x1)
        if i:  # down to the next row
            page.mouse.move(left + start * scale, top + y * scale)
        page.mouse.move(left + end * scale, top + y * scale, steps=3)
    page.mouse.up()


def test_paint_a_mask_and_inpaint(tmp_path, shared_webui):
    from playwright.sync_api import sync_playwright
    out_dir = os.path.join(shared_webui.data_dir, "outputs", "img2img-images")
    before = pngs_under(out_dir)
    source = tmp_path / "input.png"
    original = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(original).save(source)

    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(shared_webui.url)
        use_checkpoint(page, "tiny.safetensors")
        page.get_by_role("tab", name="img2img", exact=True).click()
        page.get_by_role("tab", name="Inpaint", exact=True).click()
        editor = page.locator("#img2maskimg")
        # Gradio's editor attaches its canvas only once its layers and tools exist; a picture given before that
        # is lost and leaves the editor broken until the page reloads, so wait for the canvas, then upload once.
        editor.locator("canvas").first.wait_for(state="attached", timeout=120000)
        editor.locator("input[type=file]").set_input_files(str(source))
        brush_size = editor.locator("button[aria-label='Brush Size']")
        brush_size.wait_for(timeout=60000)  # the brush is chosen once the picture is in
        brush_size.click()
        editor.locator("input[type=range]").fill("3")  # a radius of 3 picture pixels
        page.locator("#img2img_prompt textarea").click()  # closes the size popup, which would take the stroke
        paint_square(page, "img2maskimg", 28, 28, 36, 36, row_gap=2)

        page.locator("#img2img_prompt textarea").fill("a red circle")
        set_number(page, "img2img_width", SIZE)
        set_number(page, "img2img_height", SIZE)
        set_number(page, "img2img_steps", 3)
        page.locator("#img2img_generate").click()
        page.locator("#html_info_img2img .infotext, #html_log_img2img .error").first.wait_for(timeout=180000)
        log = page.locator("#html_log_img2img").inner_text()
        browser.close()

    saved = new_pngs(out_dir, before, "a red circle")
    assert len(saved) == 1, f"expected one saved result; log: {log!r}"
    result = Image.open(saved[0])
    info = result.info.get("parameters", "")
    assert "Mask blur: 4" in info and "Denoising strength: 0.75" in info
    out = np.asarray(result.convert("RGB"))
    assert out.shape == original.shape
    changed = np.any(out != original, axis=-1)
    ys, xs = np.nonzero(changed)
    where = f"changed pixels span x {xs.min()}-{xs.max()}, y {ys.min()}-{ys.max()}" if len(xs) else "nothing changed"
    assert changed[29:35, 29:35].all(), f"the painted square was repainted; {where}"
    assert not changed[:12, :].any() and not changed[52:, :].any(), f"pixels far from the brush are untouched; {where}"
    assert not changed[:, :12].any() and not changed[:, 52:].any(), where
