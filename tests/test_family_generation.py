"""Every family and variant generates end to end at tiny widths: txt2img, hires fix, img2img, inpainting (9-channel
models, SDXL's included), instruct-pix2pix, the refiner, SDXL's conditioning rules, textual inversion with
`clip_l`/`clip_g` vectors, the checkpoint merger's family rule, and the infotext round trip."""
import numpy as np
import pytest
import torch
from PIL import Image

from modules import infotext_utils, processing, prompt_parser, sd_models, shared
from tests import checkpoint_factory as factory


@pytest.fixture
def checkpoints(family_checkpoints):
    """family/variant -> path of a tiny checkpoint (with its yaml), shared by the session."""
    return family_checkpoints


def load(path):
    return sd_models.load_model(sd_models.CheckpointInfo(path))


def txt2img(model, **kwargs):
    params = dict(sd_model=model, prompt="a red circle", negative_prompt="blue", steps=2, cfg_scale=5, width=64,
                  height=64, seed=3, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    return processing.process_images(processing.StableDiffusionProcessingTxt2Img(**params))


def img2img(model, **kwargs):
    params = dict(sd_model=model, prompt="a red circle", steps=2, cfg_scale=5, width=64, height=64, seed=3,
                  sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True, denoising_strength=0.75,
                  init_images=[gradient()])
    params.update(kwargs)
    return processing.process_images(processing.StableDiffusionProcessingImg2Img(**params))


def gradient(w=64, h=64):
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    return Image.fromarray(np.concatenate([np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)),
                                           np.full((h, w, 1), 128, np.float32)], axis=2).astype(np.uint8))


def a_picture(result, size=(64, 64)):
    image = result.images[result.index_of_first_image]
    pixels = np.asarray(image)
    return image.size == size and pixels.std() > 0


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl", "sdxl_refiner"])
def test_txt2img_hires_and_img2img(checkpoints, family):
    model = load(checkpoints(family))
    assert model.family.name == family
    assert a_picture(txt2img(model))
    hires = txt2img(model, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", denoising_strength=0.6, hr_second_pass_steps=2)
    assert a_picture(hires, (96, 96)) and "Hires upscale: 1.5" in hires.infotexts[0]
    assert a_picture(img2img(model))


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_inpainting_models_repaint_only_the_mask(checkpoints, family):
    model = load(checkpoints(family, "inpainting"))
    assert model.variant == "inpainting" and model.is_sdxl_inpaint == (family == "sdxl")
    image = gradient()
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (16, 16, 48, 48))
    result = img2img(model, init_images=[image], mask=mask, mask_blur=0, inpainting_fill=1, inpaint_full_res=False)
    out = np.asarray(result.images[0].convert("RGB"))
    changed = np.any(out != np.asarray(image), axis=-1)
    assert changed[16:48, 16:48].mean() > 0.5 and not changed[:8].any() and not changed[:, :8].any()
    assert a_picture(txt2img(model))  # a fully-masked grey image when there is no init image


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_instruct_pix2pix_models_edit_the_init_image(checkpoints, family):
    model = load(checkpoints(family, "instruct-pix2pix"))
    assert model.variant == "instruct-pix2pix" and model.cond_stage_key == "edit"
    result = img2img(model, image_cfg_scale=1.5)
    assert a_picture(result) and "Image CFG scale: 1.5" in result.infotexts[0]
    assert a_picture(txt2img(model))


def test_sdxl_vector_follows_the_size_crop_and_empty_negative_prompt(checkpoints):
    model = load(checkpoints("sdxl"))
    e = model.conditioner.embedders[2].outdim
    saved = (shared.opts.sdxl_crop_top, shared.opts.sdxl_crop_left)
    try:
        shared.opts.sdxl_crop_top, shared.opts.sdxl_crop_left = 8, 16
        with torch.inference_mode():
            c = model.get_learned_conditioning(prompt_parser.SdConditioning(["a cat"], width=96, height=64))
            empty_negative = model.get_learned_conditioning(prompt_parser.SdConditioning([""], width=96, height=64, is_negative_prompt=True))
            empty_prompt = model.get_learned_conditioning(prompt_parser.SdConditioning([""], width=96, height=64))
    finally:
        shared.opts.sdxl_crop_top, shared.opts.sdxl_crop_left = saved
    pooled = c["vector"].shape[1] - 6 * e
    from ldm.modules.diffusionmodules.openaimodel import timestep_embedding
    sizes = timestep_embedding(torch.tensor([64.0, 96.0, 8.0, 16.0, 64.0, 96.0]), e).reshape(1, -1)
    assert torch.allclose(c["vector"][:, pooled:], sizes, atol=1e-6)
    # an all-empty negative prompt: text parts zeroed (A1111), the size parts kept; an empty prompt is encoded
    assert not empty_negative["crossattn"].any() and not empty_negative["vector"][:, :pooled].any()
    assert torch.allclose(empty_negative["vector"][:, pooled:], sizes, atol=1e-6)
    assert empty_prompt["crossattn"].abs().sum() > 0


def test_refiner_switches_models_at_the_fraction(checkpoints):
    base = load(checkpoints("sdxl"))
    refiner_info = sd_models.CheckpointInfo(checkpoints("sdxl_refiner"))
    refiner_info.register()
    result = txt2img(base, steps=4, refiner_checkpoint=refiner_info.title, refiner_switch_at=0.5)
    assert a_picture(result)
    info = infotext_utils.parse_generation_parameters(result.infotexts[0])
    assert info["Refiner"] == refiner_info.short_title and float(info["Refiner switch at"]) == 0.5
    # the selected checkpoint is current again once the job is done
    assert shared.sd_model.sd_checkpoint_info.filename == base.sd_checkpoint_info.filename
    unused = txt2img(shared.sd_model, steps=4, refiner_checkpoint=refiner_info.title, refiner_switch_at=1.0)
    assert "Refiner" not in infotext_utils.parse_generation_parameters(unused.infotexts[0])


def test_textual_inversion_for_sd2_and_sdxl(checkpoints, tmp_path, monkeypatch):
    """An SD2 embedding is one tensor of the OpenCLIP width; an SDXL one has clip_l and clip_g; each applies only
    to the family whose widths it has, and changes the conditioning where its name appears."""
    import safetensors.torch
    from modules import sd_hijack
    db = sd_hijack.model_hijack.embedding_db
    monkeypatch.setattr(db, "embedding_dirs", {})
    db.add_embedding_dir(str(tmp_path))
    sd2 = factory.family_config("sd2").text_encoders[0].width
    xl = factory.family_config("sdxl").text_encoders
    safetensors.torch.save_file({"emb_params": torch.randn(2, sd2)}, str(tmp_path / "twotoken.safetensors"))
    safetensors.torch.save_file({"clip_l": torch.randn(2, xl[0].width), "clip_g": torch.randn(2, xl[1].width)},
                                str(tmp_path / "xlstyle.safetensors"))
    for family, name, other in (("sd2", "twotoken", "xlstyle"), ("sdxl", "xlstyle", "twotoken")):
        model = load(checkpoints(family))
        assert name in db.word_embeddings and other in db.skipped_embeddings
        with torch.inference_mode():
            plain = model.get_learned_conditioning(["a photo of a cat"])
            with_ti = model.get_learned_conditioning([f"a photo of {name}"])
        plain = plain["crossattn"] if isinstance(plain, dict) else plain
        with_ti = with_ti["crossattn"] if isinstance(with_ti, dict) else with_ti
        assert not torch.allclose(plain, with_ti)


def test_merger_refuses_to_mix_families_naming_both(checkpoints, tmp_path):
    from modules import merge
    with pytest.raises(merge.MergeError, match="A is SD2.x, B is SDXL"):
        merge.merge_checkpoints(checkpoints("sd2"), checkpoints("sdxl"), multiplier=0.5,
                                output_path=str(tmp_path / "mixed.safetensors"))
    merged = merge.merge_checkpoints(checkpoints("sdxl", "inpainting"), checkpoints("sdxl"), multiplier=0.5,
                                     output_path=str(tmp_path / "xl-merged.safetensors"))
    model = load(merged.filename)
    assert (model.family.name, model.variant) == ("sdxl", "inpainting") and a_picture(txt2img(model))


def test_xyz_checkpoint_axis_across_families(checkpoints, monkeypatch):
    """One X/Y/Z plot over an SD2 and an SDXL checkpoint: each cell is drawn by its own model, as a single image with
    that checkpoint would be."""
    import os
    from modules import script_loading
    from modules.paths_internal import script_path
    xyz = script_loading.load_module(os.path.join(script_path, "scripts", "xyz_grid.py"))
    monkeypatch.setitem(shared.opts.data, "grid_save", False)
    infos = [sd_models.CheckpointInfo(checkpoints(family)) for family in ("sd2", "sdxl")]
    for info in infos:
        info.register()
    start = load(checkpoints("sd1"))
    script = xyz.Script()
    script.is_img2img = False
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=start, prompt="a red circle", negative_prompt="", steps=2, cfg_scale=5, width=64, height=64, seed=9,
        sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    processed = script.run(p, "Checkpoint name", "", [info.title for info in infos], "Nothing", "", None, "Nothing", "", None,
                           True, True, False, False, False, False, False, 0, False)
    cells, texts = processed.images[1:], processed.infotexts[1:]
    assert len(cells) == 2
    for info, cell, text in zip(infos, cells, texts):
        assert f"Model: {info.name_for_extra}" in text
        single = txt2img(load(info.filename), prompt="a red circle", negative_prompt="", seed=9)
        assert cell.tobytes() == single.images[0].tobytes()
