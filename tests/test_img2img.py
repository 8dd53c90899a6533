"""img2img on tiny checkpoints: strength 0 returns the input, low strength stays close, resize modes, the inputs a
user may give (grayscale, RGBA, 16-bit, a mask of another size, huge images) and batch processing of a folder."""
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from modules import img2img as img2img_engine, processing, processing_img2img, shared
from tests.checkpoint_factory import make_tiny_sd1_checkpoint

DEMO_CHECKPOINT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models", "Stable-diffusion", "demo-shapes.safetensors")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from modules import sd_models
    path = str(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")
    make_tiny_sd1_checkpoint(path)
    model = sd_models.load_model(sd_models.CheckpointInfo(path))
    yield model if model is not None else shared.sd_model


def gradient_image(w=64, h=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return Image.fromarray(np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), np.full_like(xx, 128)], -1).astype(np.uint8))


def make_p(model, **kwargs):
    params = dict(sd_model=model, prompt="a red circle", negative_prompt="", steps=3, cfg_scale=7, width=64, height=64,
                  seed=1234, sampler_name="Euler a", do_not_save_samples=True, do_not_save_grid=True,
                  init_images=[gradient_image()], denoising_strength=0.5)
    params.update(kwargs)
    return processing.StableDiffusionProcessingImg2Img(**params)


def run(model, **kwargs):
    return processing.process_images(make_p(model, **kwargs))


def mean_abs_diff(a, b):
    return float(np.abs(np.asarray(a.convert("RGB")).astype(np.float64) - np.asarray(b.convert("RGB")).astype(np.float64)).mean())


# ------------------------------------------------------------------------------------------------ strength


def test_denoising_strength_zero_returns_the_input_unchanged(tiny_model):
    image = gradient_image()
    res = run(tiny_model, init_images=[image], denoising_strength=0.0)
    assert res.images[0].size == image.size
    assert res.images[0].tobytes() == image.tobytes()
    assert "Denoising strength: 0.0" in res.infotexts[0]


def test_denoising_strength_zero_with_a_mask_returns_the_input(tiny_model):
    image = gradient_image(80, 64)
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (10, 10, 30, 30))
    res = run(tiny_model, init_images=[image], mask=mask, denoising_strength=0.0, inpaint_full_res=True, width=64, height=64)
    assert res.images[0].tobytes() == image.tobytes()


def test_strength_zero_of_a_batch_gives_each_input(tiny_model):
    a, b = gradient_image(), Image.new("RGB", (64, 64), (10, 200, 30))
    res = run(tiny_model, init_images=[a, b], batch_size=2, denoising_strength=0.0)
    images = res.images[res.index_of_first_image:]
    assert [x.tobytes() for x in images] == [a.tobytes(), b.tobytes()]


@pytest.fixture()
def silent_unet(tiny_model):
    """The tiny model with a UNet that predicts no noise: sampling then keeps exactly the noise img2img added, so
    the distance of the result from the input measures how much of the input each strength gives up."""
    out = tiny_model.model.diffusion_model.out[-1]
    saved = out.weight.detach().clone(), out.bias.detach().clone()
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()
    yield tiny_model
    with torch.no_grad():
        out.weight.copy_(saved[0])
        out.bias.copy_(saved[1])


class LatentSpy:
    """A stand-in script runner that keeps the sampled latents and the init latent (every other hook does nothing)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None

    def post_sample(self, p, ps):
        self.samples, self.init_latent = ps.samples.clone(), p.init_latent.clone()


def test_low_strength_stays_closer_to_the_input_than_high_strength(silent_unet):
    # Measured on latents: the tiny checkpoint's random VAE does not reconstruct pixels, the demo model test below
    # measures pixels.
    distances = {}
    for strength in (0.1, 0.5, 1.0):
        p = make_p(silent_unet, denoising_strength=strength, steps=10, sampler_name="Euler")
        p.scripts = spy = LatentSpy()
        processing.process_images(p)
        distances[strength] = float((spy.samples - spy.init_latent).abs().mean())
    assert distances[0.1] < distances[0.5] < distances[1.0]
    assert distances[0.1] < 0.1 * distances[1.0]


@pytest.mark.skipif(not os.path.exists(DEMO_CHECKPOINT), reason="the demo checkpoint models/Stable-diffusion/demo-shapes.safetensors is not built yet")
def test_demo_model_low_strength_stays_close_and_high_strength_follows_the_prompt():
    from demo_model import judge, shapes_data
    from modules import sd_models
    model = sd_models.load_model(sd_models.CheckpointInfo(DEMO_CHECKPOINT)) or shared.sd_model
    size = 64
    square = shapes_data.ShapeObject("square", "blue", "centre", "large", 0.5, 0.5, 0.2)
    image = Image.fromarray(shapes_data.render_scene(shapes_data.Scene([square], "white")))
    params = dict(width=size, height=size, steps=8, cfg_scale=7, sampler_name="Euler a", init_images=[image])
    low = run(model, prompt="a blue square", denoising_strength=0.15, **params).images[0]
    assert mean_abs_diff(low, image) < 20
    kept = judge.judge(low).main
    assert kept is not None and (kept.colour, kept.shape) == ("blue", "square")
    high = run(model, prompt="a red circle", denoising_strength=0.95, **params).images[0]
    found = judge.judge(high).main
    assert found is not None and found.colour == "red", "the high-strength result should follow the prompt"


# ------------------------------------------------------------------------------------------------ sizes and inputs


@pytest.mark.parametrize("resize_mode", [0, 1, 2, 3])
def test_each_resize_mode_gives_the_requested_size(tiny_model, resize_mode):
    res = run(tiny_model, init_images=[gradient_image(96, 48)], resize_mode=resize_mode, width=64, height=48, denoising_strength=0.3)
    assert res.images[0].size == (64, 48)


def test_crop_and_resize_keeps_the_centre_and_fill_keeps_everything():
    from modules import images
    wide = Image.new("RGB", (200, 100), (255, 0, 0))
    wide.paste((0, 0, 255), (0, 0, 50, 100))  # a blue band on the left
    cropped = images.resize_image(1, wide, 100, 100)
    assert np.asarray(cropped)[:, 0, 2].mean() < 50  # the blue band was cropped away
    filled = images.resize_image(2, wide, 100, 100)
    assert np.asarray(filled)[50, 5, 2] > 200  # the blue band is still there


def test_resize_by_scale_rounds_to_the_latent_grid():
    assert img2img_engine.scaled_size(Image.new("RGB", (100, 60)), 1.5) == (144, 88)
    assert img2img_engine.scaled_size(Image.new("RGB", (512, 512)), 0.5) == (256, 256)
    with pytest.raises(ValueError, match="Scale"):
        img2img_engine.scaled_size(Image.new("RGB", (10, 10)), 0)


def test_rgba_input_is_flattened_on_the_background_colour(tiny_model):
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste((0, 255, 0, 255), (0, 0, 32, 64))
    res = run(tiny_model, init_images=[image], denoising_strength=0.0)
    out = np.asarray(res.images[0])
    assert tuple(out[10, 10]) == (0, 255, 0)
    assert tuple(out[10, 50]) == (255, 255, 255)  # transparent -> img2img_background_color (#ffffff)


def test_grayscale_and_16_bit_inputs_work(tiny_model):
    gray = Image.new("L", (64, 64), 100)
    assert np.asarray(run(tiny_model, init_images=[gray], denoising_strength=0.0).images[0])[0, 0].tolist() == [100, 100, 100]
    sixteen = Image.fromarray(np.full((64, 64), 40000, dtype=np.uint16))
    assert sixteen.mode.startswith("I")
    out = np.asarray(run(tiny_model, init_images=[sixteen], denoising_strength=0.0).images[0])
    assert out[0, 0].tolist() == [156, 156, 156]  # 40000 / 257: the brightness is kept, not stretched
    res = run(tiny_model, init_images=[sixteen], denoising_strength=0.5)
    assert res.images[0].size == (64, 64)


def test_a_huge_image_is_refused_with_a_clear_message(tiny_model, monkeypatch):
    monkeypatch.setattr(processing_img2img, "MAX_INIT_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(ValueError, match="The init image is 128x128, larger than"):
        run(tiny_model, init_images=[gradient_image(128, 128)])


def test_latent_upscale_of_a_large_image_is_refused(tiny_model, monkeypatch):
    monkeypatch.setattr(processing_img2img, "MAX_LATENT_RESIZE_PIXELS", 100 * 100)
    with pytest.raises(ValueError, match="latent upscale"):
        run(tiny_model, init_images=[gradient_image(128, 128)], resize_mode=3)


@pytest.mark.parametrize("kwargs,message", [
    ({"init_images": []}, "needs an init image"),
    ({"init_images": ["not an image"]}, "must be a PIL image"),
    ({"denoising_strength": 1.5}, "denoising_strength must be between 0 and 1"),
    ({"resize_mode": 7}, "resize_mode must be one of"),
    ({"inpainting_fill": "glitter"}, "inpainting_fill must be one of"),
    ({"init_images": [gradient_image()] * 3, "batch_size": 2}, "bad number of images"),
])
def test_bad_inputs_name_the_input(tiny_model, kwargs, message):
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        run(tiny_model, **kwargs)


def test_options_by_name_are_accepted(tiny_model):
    res = run(tiny_model, resize_mode="Crop and resize", inpainting_fill="latent nothing", mask=Image.new("L", (64, 64), 255), inpaint_full_res=False)
    assert "Masked content: latent nothing" in res.infotexts[0]


def test_the_same_object_can_run_twice(tiny_model):
    """Scripts (loopback, batch) call process_images on one p again; the second run starts from the caller's mask."""
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 20, 40, 40))
    p = make_p(tiny_model, mask=mask, inpaint_full_res=True, inpaint_full_res_padding=0, mask_blur=2)
    first = processing.process_images(p)
    second = processing.process_images(p)
    assert first.images[0].tobytes() == second.images[0].tobytes()


# ------------------------------------------------------------------------------------------------ the tab's modes


def test_modes_give_image_and_mask():
    image = gradient_image()
    assert img2img_engine.image_and_mask(0, init_img=image) == (image, None)
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (5, 5, 15, 15))
    got, mask = img2img_engine.image_and_mask(2, init_img_with_mask={"background": image, "layers": [layer], "composite": image})
    assert got is image and mask.mode == "L" and mask.getbbox() == (5, 5, 15, 15)
    sketched = image.copy()
    sketched.paste((255, 0, 0), (40, 40, 50, 50))
    got, mask = img2img_engine.image_and_mask(3, inpaint_color_sketch={"background": image, "layers": [], "composite": sketched}, mask_blur=0)
    assert mask.getbbox() == (40, 40, 50, 50) and tuple(np.asarray(got)[45, 45]) == (255, 0, 0)
    got, _ = img2img_engine.image_and_mask(1, sketch={"background": image, "layers": [], "composite": sketched})
    assert got is sketched
    with pytest.raises(ValueError, match="No mask"):
        img2img_engine.image_and_mask(4, init_img_inpaint=image, init_mask_inpaint=None)
    with pytest.raises(ValueError, match="No init image"):
        img2img_engine.image_and_mask(0, init_img=None)


# ------------------------------------------------------------------------------------------------ batch


def test_batch_from_a_folder_writes_one_result_per_input_named_after_it(tiny_model, tmp_path):
    input_dir, output_dir, mask_dir = tmp_path / "in", tmp_path / "out", tmp_path / "masks"
    for d in (input_dir, mask_dir):
        d.mkdir()
    gradient_image().save(input_dir / "first.png")
    Image.new("RGB", (64, 64), (200, 30, 30)).save(input_dir / "second.jpg")
    (input_dir / "notes.txt").write_text("not an image")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 32))
    mask.save(mask_dir / "first.png")
    mask.save(mask_dir / "third.png")
    p = make_p(tiny_model, init_images=None, do_not_save_samples=False, denoising_strength=0.6)
    res = img2img_engine.process_batch(p, str(input_dir), str(output_dir), str(mask_dir), [])
    written = os.listdir(output_dir)
    assert len(written) == 1 and re.fullmatch(r"(\d+-)?first\.png", written[0])  # second.jpg has no mask "second.*"
    assert "Skipped 1 image(s): second.jpg" in res.comments
    out = np.asarray(Image.open(output_dir / written[0]).convert("RGB"))
    assert (out[48:, 48:] == np.asarray(gradient_image())[48:, 48:]).all()  # far from the mask: untouched


def test_batch_with_one_mask_file_uses_it_for_every_image_and_reports_a_missing_folder(tiny_model, tmp_path):
    input_dir, output_dir = tmp_path / "in", tmp_path / "out"
    input_dir.mkdir()
    for name in ("a.png", "b.png"):
        gradient_image().save(input_dir / name)
    p = make_p(tiny_model, init_images=None, do_not_save_samples=False)
    mask_dir = tmp_path / "mask"
    mask_dir.mkdir()
    Image.new("L", (64, 64), 0).save(mask_dir / "only.png")
    res = img2img_engine.process_batch(p, str(input_dir), str(output_dir), str(mask_dir), [])
    written = sorted(os.listdir(output_dir))
    assert len(written) == 2 and written[0].endswith("a.png") and written[1].endswith("b.png") and len(res.images) == 2
    with pytest.raises(ValueError, match="Input directory .* does not exist"):
        img2img_engine.process_batch(p, str(tmp_path / "missing"), None, None, [])


def test_a_batch_where_every_file_is_skipped_or_no_folder_is_given_says_so(tiny_model, tmp_path):
    # (a folder of files that are not images ended with an empty result and the reasons in the console only; an
    # empty folder field was reported as "Input directory '' does not exist")
    (tmp_path / "notes.png").write_text("not an image")
    p = make_p(tiny_model, init_images=None)
    with pytest.raises(ValueError, match=r"No image was processed\. Skipped 1 image\(s\): notes\.png"):
        img2img_engine.process_batch(p, str(tmp_path), None, None, [])
    with pytest.raises(ValueError, match="Input directory not selected"):
        img2img_engine.process_batch(p, "", None, None, [])


# ------------------------------------------------------------------------------------------------ loopback


def test_loopback_feeds_results_back_with_the_strength_curve(tiny_model):
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts", "loopback.py")
    spec = importlib.util.spec_from_file_location("test_loopback", path)
    loopback = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loopback)
    assert loopback.strength_at(0, 4, 0.75, 0.5, "Linear") == 0.75
    assert loopback.strength_at(3, 4, 0.75, 0.5, "Aggressive") == pytest.approx(0.5)
    assert loopback.strength_at(1, 3, 0.2, 1.0, "Lazy") < loopback.strength_at(1, 3, 0.2, 1.0, "Linear") < loopback.strength_at(1, 3, 0.2, 1.0, "Aggressive")
    p = make_p(tiny_model, steps=2, denoising_strength=0.6)
    res = loopback.Script().run(p, 3, 0.3, "Linear")
    results = res.images[res.index_of_first_image:]
    assert len(results) == 3 and res.seed == 1234
    assert "Final denoising strength: 0.3" in res.info and "Denoising curve: Linear" in res.info


# ------------------------------------------------------------------------------------------------ send-to


def test_send_to_picks_the_selected_image_or_the_first_after_the_grid(tmp_path):
    import json
    from webui import send_to
    grid, first, second = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "green"), Image.new("RGB", (8, 8), "blue")
    path = tmp_path / "second.png"
    second.save(path)
    gallery = [(grid, None), (first, None), (str(path), None)]
    info = json.dumps({"index_of_first_image": 1, "infotexts": ["grid text", "first text", "second text"]})
    assert send_to.gallery_image(gallery, None, info) is first
    assert send_to.gallery_image(gallery, 2, info).getpixel((0, 0)) == (0, 0, 255)
    assert send_to.infotext_of(info, None, first) == "first text"
    assert send_to.infotext_of(info, 2, None) == "second text"
    assert send_to.gallery_image([], None, info) is None
