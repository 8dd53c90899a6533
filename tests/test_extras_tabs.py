"""The Extras and PNG Info tabs build, and PNG Info reads what save_image wrote."""
import gradio as gr

from modules import images, modelloader, scripts, shared
from webui import tab_extras, tab_pnginfo


class _Ctx:
    def __init__(self):
        self.tabs = {}

    def register_tab(self, name, **parts):
        self.tabs[name] = parts


def test_tabs_build_with_the_upscale_script():
    modelloader.load_upscalers()
    scripts.load_scripts()
    ctx = _Ctx()
    with gr.Blocks():
        with gr.Tab("Extras"):
            tab_extras.create_tab(ctx)
        with gr.Tab("PNG Info"):
            tab_pnginfo.create_tab(ctx)
    assert set(ctx.tabs) == {"extras", "pnginfo"}
    assert "Upscale" in [s.name for s in scripts.scripts_postproc.scripts_in_preferred_order()]


def test_pnginfo_shows_parsed_parameters(tmp_path):
    from PIL import Image
    info = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x48"
    fullfn, _ = images.save_image(Image.new("RGB", (8, 8)), str(tmp_path), "", info=info, forced_filename="x", save_to_dirs=False)
    geninfo, page = tab_pnginfo.run_pnginfo(fullfn)
    assert geninfo == info
    assert "<b>Seed</b></td><td>42" in page and "<b>Size-1</b>" in page and "Mask mode" not in page
    assert tab_pnginfo.run_pnginfo(None) == ("", "")
    empty = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(empty)
    assert "Nothing found" in tab_pnginfo.run_pnginfo(str(empty))[1]
    assert shared.opts.enable_pnginfo
