"""Inpainting on tiny checkpoints: untouched pixels stay bit-identical, the mask is blended at every step for every
sampler family, masked content and mask modes, 9-channel inpainting checkpoints, and the outpainting scripts."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from modules import processing, shared
from modules.processing_helpers import gaussian_blur_mask
from tests.checkpoint_factory import make_tiny_sd1_checkpoint

DEMO_CHECKPOINT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models", "Stable-diffusion", "demo-shapes.safetensors")


def _load(path):
    from modules import sd_models
    model = sd_models.load_model(sd_models.CheckpointInfo(path))
    return model if model is not None else shared.sd_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")
    make_tiny_sd1_checkpoint(path)
    return _load(path)


@pytest.fixture(scope="module")
def tiny_inpainting_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ckpt9") / "tiny-inpainting.safetensors")
    make_tiny_sd1_checkpoint(path, in_channels=9)
    return _load(path)


def noise_image(w=96, h=64, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def box_mask(size, box):
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def run(model, **kwargs):
    params = dict(sd_model=model, prompt="a red circle", steps=3, cfg_scale=7, width=64, height=64, seed=7,
                  sampler_name="Euler a", do_not_save_samples=True, do_not_save_grid=True, denoising_strength=0.8,
                  mask_blur=4)
    params.update(kwargs)
    return processing.process_images(processing.StableDiffusionProcessingImg2Img(**params))


def changed_pixels(result, image):
    return np.any(np.asarray(result.convert("RGB")) != np.asarray(image.convert("RGB")), axis=-1)


def outside_blurred_mask(mask, blur, invert=False):
    """Pixels the blurred mask does not touch at all (where the original must come back bit for bit)."""
    if invert:
        from PIL import ImageOps
        mask = ImageOps.invert(mask)
    return np.asarray(gaussian_blur_mask(mask, blur, blur)) == 0


# ------------------------------------------------------------------------------------------------ untouched pixels


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M", "DDIM"])
def test_only_masked_leaves_every_pixel_outside_the_blurred_mask_identical(tiny_model, sampler):
    image = noise_image(96, 64)
    mask = box_mask(image.size, (40, 20, 60, 40))
    res = run(tiny_model, init_images=[image], mask=mask, inpaint_full_res=True, inpaint_full_res_padding=8, sampler_name=sampler)
    out = res.images[0]
    assert out.size == image.size  # the crop was pasted back into the full picture
    changed = changed_pixels(out, image)
    assert not changed[outside_blurred_mask(mask, 4)].any()
    assert changed[25:35, 45:55].mean() > 0.5  # and the masked area was repainted
    info = res.infotexts[0]
    assert "Inpaint area: Only masked" in info and "Masked area padding: 8" in info and "Mask blur: 4" in info


def test_whole_picture_leaves_pixels_outside_the_blurred_mask_identical(tiny_model):
    image = noise_image(64, 64)
    mask = box_mask(image.size, (10, 10, 30, 30))
    out = run(tiny_model, init_images=[image], mask=mask, inpaint_full_res=False).images[0]
    changed = changed_pixels(out, image)
    assert not changed[outside_blurred_mask(mask, 4)].any()
    assert changed[15:25, 15:25].all()


def test_inpaint_not_masked_keeps_the_masked_area(tiny_model):
    image = noise_image(64, 64)
    mask = box_mask(image.size, (8, 8, 56, 56))
    res = run(tiny_model, init_images=[image], mask=mask, inpaint_full_res=False, inpainting_mask_invert=1)
    changed = changed_pixels(res.images[0], image)
    assert not changed[outside_blurred_mask(mask, 4, invert=True)].any()
    assert not changed[20:44, 20:44].any()
    assert changed[0:3, :].mean() > 0.5
    assert "Mask mode: Inpaint not masked" in res.infotexts[0]


def test_an_empty_mask_is_plain_img2img_with_a_note(tiny_model):
    image = noise_image(64, 64)
    res = run(tiny_model, init_images=[image], mask=Image.new("L", image.size, 0))
    assert "mask is empty" in res.comments
    assert changed_pixels(res.images[0], image).mean() > 0.5


def test_a_mask_covering_everything_repaints_everything(tiny_model):
    image = noise_image(64, 64)
    for full_res in (False, True):
        res = run(tiny_model, init_images=[image], mask=Image.new("L", image.size, 255), inpaint_full_res=full_res)
        assert res.images[0].size == image.size
        assert changed_pixels(res.images[0], image).mean() > 0.9


def test_a_mask_of_another_resolution_is_scaled_and_another_shape_is_refused(tiny_model):
    image = noise_image(64, 64)
    half = box_mask((32, 32), (5, 5, 15, 15))
    res = run(tiny_model, init_images=[image], mask=half, inpaint_full_res=False, mask_blur=0)
    changed = changed_pixels(res.images[0], image)
    assert changed[12:28, 12:28].all() and not changed[40:, 40:].any()
    assert "mask (32x32) was resized" in res.comments
    with pytest.raises(ValueError, match="The mask is 64x32 but the init image is 64x64"):
        run(tiny_model, init_images=[image], mask=box_mask((64, 32), (0, 0, 10, 10)))


def test_brush_layer_rgba_mask_uses_its_alpha(tiny_model):
    image = noise_image(64, 64)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (40, 40, 60, 60))
    changed = changed_pixels(run(tiny_model, init_images=[image], mask=layer, inpaint_full_res=False, mask_blur=0).images[0], image)
    assert changed[45:55, 45:55].all() and not changed[:30, :30].any()


# ------------------------------------------------------------------------------------------------ masked content


@pytest.mark.parametrize("fill,label", [(0, "fill"), (2, "latent noise"), (3, "latent nothing")])
def test_masked_content_is_recorded(tiny_model, fill, label):
    res = run(tiny_model, init_images=[noise_image(64, 64)], mask=box_mask((64, 64), (16, 16, 48, 48)), inpainting_fill=fill, inpaint_full_res=False)
    assert f"Masked content: {label}" in res.infotexts[0]


def test_fill_paints_the_masked_area_with_its_surroundings():
    from modules import masking
    image = Image.new("RGB", (64, 64), (0, 0, 255))
    image.paste((255, 255, 255), (24, 24, 40, 40))  # a white hole in a blue picture
    filled = np.asarray(masking.fill(image, box_mask((64, 64), (24, 24, 40, 40))))
    assert filled[32, 32, 2] > 200 and filled[32, 32, 0] < 60  # the hole became blue


def test_only_masked_crop_grows_to_the_processing_aspect_ratio():
    from modules import masking
    crop = masking.get_crop_region_v2(box_mask((200, 100), (90, 40, 110, 60)), 4)
    assert crop == (86, 36, 114, 64)
    x1, y1, x2, y2 = masking.expand_crop_region(crop, 128, 64, 200, 100)
    assert (x2 - x1) / (y2 - y1) == pytest.approx(2.0, abs=0.1) and 0 <= x1 and x2 <= 200 and 0 <= y1 and y2 <= 100
    assert masking.get_crop_region_v2(Image.new("L", (10, 10), 0)) is None


# ------------------------------------------------------------------------------------------------ the latent blend


class BlendCounter:
    """A stand-in script runner that counts on_mask_blend calls (every other hook does nothing)."""

    def __init__(self):
        self.calls = 0

    def __getattr__(self, name):
        return lambda *args, **kwargs: None

    def on_mask_blend(self, p, mba):
        self.calls += 1


@pytest.mark.parametrize("sampler", ["Euler", "DPM++ 2M", "Heun", "DDIM", "PLMS", "UniPC"])
def test_the_mask_is_blended_at_every_step_for_every_sampler_family(tiny_model, sampler):
    image = noise_image(64, 64)
    p = processing.StableDiffusionProcessingImg2Img(
        sd_model=tiny_model, prompt="x", steps=4, width=64, height=64, seed=3, sampler_name=sampler,
        do_not_save_samples=True, do_not_save_grid=True, init_images=[image], denoising_strength=1.0,
        mask=box_mask((64, 64), (16, 16, 48, 48)), inpaint_full_res=False, mask_blur=0)
    p.scripts = counter = BlendCounter()
    res = processing.process_images(p)
    assert counter.calls >= 4 + 1  # once per model step, and the final blend after sampling
    assert not changed_pixels(res.images[0], image)[:8, :8].any()


# ------------------------------------------------------------------------------------------------ 9-channel models


def test_a_9_channel_checkpoint_inpaints_with_the_mask_and_masked_image(tiny_inpainting_model):
    model = tiny_inpainting_model
    assert model.model.conditioning_key == "hybrid"
    image = noise_image(64, 64)
    mask = box_mask(image.size, (16, 16, 48, 48))
    seen = []
    unet = model.model.diffusion_model
    original_forward = unet.forward

    def spy(x, *args, **kwargs):
        seen.append(x.shape[1])
        return original_forward(x, *args, **kwargs)

    unet.forward = spy
    try:
        p = processing.StableDiffusionProcessingImg2Img(
            sd_model=model, prompt="x", steps=3, width=64, height=64, seed=3, sampler_name="Euler a",
            do_not_save_samples=True, do_not_save_grid=True, init_images=[image], denoising_strength=1.0, mask=mask,
            inpaint_full_res=False, mask_blur=0)
        res = processing.process_images(p)
    finally:
        del unet.forward
    assert seen and set(seen) == {9}
    cond = p.image_conditioning
    assert cond.shape == (1, 5, 8, 8)
    assert cond[0, 0, 3, 3] == 1 and cond[0, 0, 0, 0] == 0  # channel 0: the mask at latent size
    assert "Conditional mask weight: 1.0" in res.infotexts[0]
    changed = changed_pixels(res.images[0], image)
    assert changed[20:44, 20:44].all() and not changed[:8, :].any()


def test_inpainting_mask_weight_zero_conditions_on_the_whole_image(tiny_inpainting_model):
    """"Inpainting conditioning mask strength" 0: the conditioning image is the unmasked picture, whatever the mask."""
    image = noise_image(64, 64)

    def conditioning_image(weight, box):
        p = processing.StableDiffusionProcessingImg2Img(
            sd_model=tiny_inpainting_model, prompt="x", steps=2, width=64, height=64, seed=3, sampler_name="Euler",
            do_not_save_samples=True, do_not_save_grid=True, init_images=[image], denoising_strength=0.5,
            mask=box_mask(image.size, box), inpaint_full_res=False, mask_blur=0, inpainting_fill=1)
        p.inpainting_mask_weight = weight
        torch.manual_seed(0)  # the VAE encoder samples its latent distribution
        processing.process_images(p)
        return p.image_conditioning[:, 1:].clone()

    small, large = (24, 24, 40, 40), (8, 8, 56, 56)
    assert torch.equal(conditioning_image(0.0, small), conditioning_image(0.0, large))
    assert not torch.equal(conditioning_image(1.0, small), conditioning_image(1.0, large))


def test_a_9_channel_checkpoint_does_txt2img_too(tiny_inpainting_model):
    res = processing.process_images(processing.StableDiffusionProcessingTxt2Img(
        sd_model=tiny_inpainting_model, prompt="x", steps=2, width=64, height=64, seed=1, sampler_name="Euler",
        do_not_save_samples=True, do_not_save_grid=True))
    assert res.images[0].size == (64, 64)


def test_return_and_save_mask_options_add_the_mask_and_the_masked_composite(tiny_model, tmp_path):
    from modules.shared import opts
    image = noise_image(64, 64)
    mask = box_mask(image.size, (16, 16, 48, 48))
    names = ("return_mask", "return_mask_composite", "save_mask", "save_mask_composite")
    before = {name: getattr(opts, name) for name in names}
    try:
        for name in names:
            setattr(opts, name, True)
        res = run(tiny_model, init_images=[image], mask=mask, mask_blur=0, do_not_save_samples=False,
                  outpath_samples=str(tmp_path))
    finally:
        for name, value in before.items():
            setattr(opts, name, value)
    assert len(res.images) == 3 and len(res.infotexts) == 3
    result, returned_mask, composite = res.images
    assert np.array_equal(np.asarray(returned_mask.convert("L")), np.asarray(mask))
    alpha = np.asarray(composite)[..., 3]
    assert (alpha[20:44, 20:44] == 255).all() and (alpha[:12] == 0).all(), "opaque inside the mask only"
    assert np.array_equal(np.asarray(composite)[20:44, 20:44, :3], np.asarray(result)[20:44, 20:44])
    saved = sorted(f for _, _, files in os.walk(tmp_path) for f in files)
    assert len(saved) == 3
    assert any(n.endswith("-mask.png") for n in saved) and any(n.endswith("-mask-composite.png") for n in saved)


def test_mask_options_off_return_only_the_result(tiny_model):
    res = run(tiny_model, init_images=[noise_image(64, 64)], mask=box_mask((64, 64), (16, 16, 48, 48)))
    assert len(res.images) == 1


# ------------------------------------------------------------------------------------------------ the demo model


@pytest.mark.skipif(not os.path.exists(DEMO_CHECKPOINT), reason="the demo checkpoint models/Stable-diffusion/demo-shapes.safetensors is not built yet")
def test_demo_model_inpaints_the_masked_region_in_the_prompted_colour():
    model = _load(DEMO_CHECKPOINT)
    image = Image.new("RGB", (64, 64), (255, 255, 255))
    image.paste((30, 60, 220), (0, 0, 64, 64))  # all blue
    mask = box_mask(image.size, (16, 16, 48, 48))
    # four seeds: one picture may draw a smaller square in the masked area, but every one draws red there
    res = run(model, init_images=[image], mask=mask, prompt="a large red square in the centre", inpaint_full_res=False,
              denoising_strength=1.0, steps=10, inpainting_fill=0, sampler_name="Euler a", batch_size=4)
    results = res.images[res.index_of_first_image:]
    assert len(results) == 4
    red_shares = []
    for result in results:
        inside = np.asarray(result).astype(int)[20:44, 20:44].reshape(-1, 3)
        red_shares.append(float((inside[:, 0] > inside[:, 2]).mean()))
        assert not changed_pixels(result, image)[outside_blurred_mask(mask, 4)].any()
    assert min(red_shares) > 0.1 and np.mean(red_shares) > 0.3, f"the masked area should turn red: {red_shares}"


# ------------------------------------------------------------------------------------------------ outpainting scripts


def _script(module_name):
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts", f"{module_name}.py")
    spec = importlib.util.spec_from_file_location(f"test_{module_name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Script()


def _outpaint_p(model, image, **kwargs):
    params = dict(sd_model=model, prompt="x", steps=2, width=64, height=64, seed=5, sampler_name="Euler",
                  do_not_save_samples=True, do_not_save_grid=True, init_images=[image], denoising_strength=0.8)
    params.update(kwargs)
    return processing.StableDiffusionProcessingImg2Img(**params)


@pytest.mark.parametrize("directions,expected", [(["left", "right", "up", "down"], (128, 128)), (["right"], (128, 64)), (["up"], (64, 128))])
def test_outpainting_mk2_extends_the_canvas_and_keeps_the_original(tiny_model, directions, expected):
    from modules import outpainting
    image = noise_image(64, 64)
    script = _script("outpainting_mk2")
    res = script.run(_outpaint_p(tiny_model, image), "", 32, 1, directions, 1.0, 0.05)
    out = res.images[0]
    assert out.size == expected  # grown by 32 on each side asked, then up to A1111's 64-pixel grid
    left, right, up, down = outpainting.expansion(64, 64, 32, directions)
    original_area = np.asarray(out)[up + 16:up + 48, left + 16:left + 48]
    assert (original_area == np.asarray(image)[16:48, 16:48]).all()  # away from the seams the original is intact
    new_area = np.asarray(out)[:, :left] if left else np.asarray(out)[:up, :] if up else np.asarray(out)[:, 64 + 16:]
    assert new_area.std() > 1  # the new area was painted, not left black


def test_outpainting_expansion_splits_the_grid_rounding_between_sides():
    from modules import outpainting
    assert outpainting.expansion(64, 64, 32, ["left", "right"]) == (32, 32, 0, 0)
    assert outpainting.expansion(100, 64, 8, ["right"]) == (0, 28, 0, 0)
    with pytest.raises(ValueError, match="direction"):
        outpainting.expansion(64, 64, 32, [])


def test_poor_mans_outpainting_extends_the_canvas_and_keeps_the_original(tiny_model):
    image = noise_image(64, 64)
    script = _script("poor_mans_outpainting")
    res = script.run(_outpaint_p(tiny_model, image), 32, 2, 0, ["left", "down"])
    out = res.images[0]
    assert out.size == (128, 128)  # 64 + 32 on the left and at the bottom, up to the 64-pixel grid
    assert (np.asarray(out)[0:60, 68:128] == np.asarray(image)[0:60, 4:64]).all()  # the picture is kept exactly
    assert np.asarray(out)[:, :56].std() > 1
