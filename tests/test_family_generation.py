"""Every family and variant generates end to end at tiny widths: txt2img, hires fix, img2img, inpainting (9-channel
models, SDXL's included), instruct-pix2pix, the refiner, SDXL's conditioning rules, textual inversion with
`clip_l`/`clip_g` vectors, the checkpoint merger's family rule, and the infotext round trip."""
import numpy as np
import pytest
import torch
from PIL import Image

from ldm.modules.diffusionmodules.openaimodel import timestep_embedding
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
    assert a_picture(txt2img(model, prompt="a (red:1.2) circle AND a [square:triangle:0.5] BREAK on grey"))
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


def test_sdxl_conditioning_vector_prompt_language_and_names(checkpoints, monkeypatch):
    """The vector follows the size, the crop and an empty negative prompt; the prompt language reaches both text
    encoders; the names extensions use are A1111's."""
    model = load(checkpoints("sdxl"))
    e = model.conditioner.embedders[2].outdim
    # the names extensions use, as in A1111 (the original sgm classes, the wrapped embedders, the family flags)
    import sgm.models.diffusion
    import sgm.modules.diffusionmodules.openaimodel
    import sgm.modules.encoders.modules
    from modules import sd_hijack_clip, sd_hijack_open_clip, sd_models_xl
    assert (model.is_sdxl, model.is_sd1, model.is_sd2, model.is_sdxl_inpaint) == (True, False, False, False)
    assert isinstance(model, sgm.models.diffusion.DiffusionEngine)
    assert isinstance(model.model.diffusion_model, sgm.modules.diffusionmodules.openaimodel.UNetModel)
    assert isinstance(model.conditioner, sgm.modules.encoders.modules.GeneralConditioner)
    clip_l, clip_g = model.conditioner.embedders[:2]
    assert isinstance(clip_l, sd_hijack_clip.FrozenCLIPEmbedderForSDXLWithCustomWords)
    assert isinstance(clip_g, sd_hijack_open_clip.FrozenOpenCLIPEmbedder2WithCustomWords)
    assert isinstance(clip_g.wrapped, sgm.modules.encoders.modules.FrozenOpenCLIPEmbedder2)
    assert model.cond_stage_model is model.conditioner and callable(sd_models_xl.get_learned_conditioning)
    saved = (shared.opts.sdxl_crop_top, shared.opts.sdxl_crop_left)
    try:
        shared.opts.sdxl_crop_top, shared.opts.sdxl_crop_left = 8, 16
        with torch.inference_mode():
            c = model.get_learned_conditioning(prompt_parser.SdConditioning(["a cat"], width=96, height=64))
            empty_negative = model.get_learned_conditioning(prompt_parser.SdConditioning([""], width=96, height=64, is_negative_prompt=True))
            empty_prompt = model.get_learned_conditioning(prompt_parser.SdConditioning([""], width=96, height=64))
            plain_list = model.get_learned_conditioning(["a cat"])  # no size given: the family's, 1024x1024
    finally:
        shared.opts.sdxl_crop_top, shared.opts.sdxl_crop_left = saved
    pooled = c["vector"].shape[1] - 6 * e
    sizes = timestep_embedding(torch.tensor([64.0, 96.0, 8.0, 16.0, 64.0, 96.0]), e).reshape(1, -1)
    assert torch.allclose(c["vector"][:, pooled:], sizes, atol=1e-6)
    native = timestep_embedding(torch.tensor([1024.0, 1024.0, 8.0, 16.0, 1024.0, 1024.0]), e).reshape(1, -1)
    assert torch.allclose(plain_list["vector"][:, pooled:], native, atol=1e-6)
    # an all-empty negative prompt: text parts zeroed (A1111), the size parts kept; an empty prompt is encoded
    assert not empty_negative["crossattn"].any() and not empty_negative["vector"][:, :pooled].any()
    assert torch.allclose(empty_negative["vector"][:, pooled:], sizes, atol=1e-6)
    assert empty_prompt["crossattn"].abs().sum() > 0

    # emphasis, editing and BREAK act in CLIP-L's and bigG's columns of the cross-attention states; CLIP skip moves
    # CLIP-L's layer only with the "Clip skip SDXL" setting (A1111: bigG always uses its penultimate layer)
    from modules import latent_codec, model_families
    clip_l = model.model_config.text_encoders[0].width

    def states(prompt, clip_skip=1, clip_l_skip=False):
        monkeypatch.setitem(shared.opts.data, "CLIP_stop_at_last_layers", clip_skip)
        monkeypatch.setitem(shared.opts.data, "sdxl_clip_l_skip", clip_l_skip)
        with torch.inference_mode():
            c = model.get_learned_conditioning(prompt_parser.SdConditioning([prompt], width=64, height=64))["crossattn"]
        return c[..., :clip_l], c[..., clip_l:]

    plain_l, plain_g = states("a photo of a cat")
    for changed in (states("a photo of a (cat:1.5)"), states("a photo of a [cat]")):
        assert not torch.allclose(changed[0], plain_l) and not torch.allclose(changed[1], plain_g)
    assert plain_l.shape[1] == 77 and states("a photo BREAK of a cat")[0].shape[1] == 154
    assert all(torch.equal(a, b) for a, b in zip(states("a photo of a cat", clip_skip=3), (plain_l, plain_g)))
    assert all(torch.equal(a, b) for a, b in zip(states("a photo of a cat", 2, clip_l_skip=True), (plain_l, plain_g)))
    skipped_l, skipped_g = states("a photo of a cat", 3, clip_l_skip=True)
    assert not torch.allclose(skipped_l, plain_l) and torch.equal(skipped_g, plain_g)
    # live previews use SDXL's latent factors and TAESD decoder
    assert latent_codec.latent_format_of(model) is model_families.SDXL_LATENT


def test_each_batch_starts_on_the_selected_checkpoint_after_the_refiner_took_over(checkpoints, monkeypatch):
    # image k of a job equals the single image with seed+k, refiner or not: the second batch must not start on the
    # refiner the first one switched to
    from modules import loaded_models
    monkeypatch.setattr(loaded_models, "loaded", [])
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 1)
    base_info = sd_models.CheckpointInfo(checkpoints("sdxl"))
    base = load(base_info.filename)
    refiner_info = sd_models.CheckpointInfo(checkpoints("sdxl_refiner"))
    refiner_info.register()
    refine = dict(refiner_checkpoint=refiner_info.title, refiner_switch_at=0.5, steps=4)
    two = txt2img(base, n_iter=2, **refine)
    second_alone = txt2img(shared.sd_model, seed=4, **refine)
    assert two.images[1].tobytes() == second_alone.images[0].tobytes()
    assert shared.sd_model.sd_checkpoint_info.filename == base_info.filename


def test_a_job_given_a_model_whose_weights_were_freed_runs_on_the_loaded_one(checkpoints, monkeypatch):
    # An extension holding shared.sd_model from before a refiner job passes it to its next job: in A1111 p.sd_model
    # is always the loaded model; here it crashed deep in the UNet ("Tensor on device meta").
    from modules import loaded_models
    monkeypatch.setattr(loaded_models, "loaded", [])
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 1)
    held = load(checkpoints("sdxl"))
    refiner_info = sd_models.CheckpointInfo(checkpoints("sdxl_refiner"))
    refiner_info.register()
    txt2img(held, refiner_checkpoint=refiner_info.title, refiner_switch_at=0.5, steps=4)
    assert shared.sd_model is not held  # the base was loaded again after the refiner; the held one is freed
    again = txt2img(held, steps=4)
    assert again.images[0].tobytes() == txt2img(shared.sd_model, steps=4).images[0].tobytes()


def test_the_hires_checkpoint_draws_the_second_pass_and_the_selected_one_comes_back(checkpoints, tiny_checkpoint_path,
                                                                                    monkeypatch):
    from modules import loaded_models, sd_samplers
    monkeypatch.setattr(loaded_models, "loaded", [])
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 1)
    base = load(checkpoints("sd1"))
    base_file = base.sd_checkpoint_info.filename
    hires_info = sd_models.CheckpointInfo(tiny_checkpoint_path)
    hires_info.register()
    sampled_with = []
    create_sampler = sd_samplers.create_sampler

    def recording(name, model):
        sampled_with.append(model.sd_checkpoint_info.filename)
        return create_sampler(name, model)

    monkeypatch.setattr(sd_samplers, "create_sampler", recording)
    hires = dict(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", denoising_strength=0.6, hr_second_pass_steps=2)
    same = txt2img(base, **hires)
    assert sampled_with == [base_file, base_file] and "Hires checkpoint" not in same.infotexts[0]
    sampled_with.clear()
    result = txt2img(shared.sd_model, n_iter=2, hr_checkpoint_name=hires_info.title, **hires)
    assert sampled_with == [base_file, tiny_checkpoint_path] * 2  # each batch: first pass, then the hires checkpoint
    info = infotext_utils.parse_generation_parameters(result.infotexts[0])
    assert info["Hires checkpoint"] == hires_info.short_title
    assert result.images[0].tobytes() != same.images[0].tobytes()
    assert shared.sd_model.sd_checkpoint_info.filename == base_file  # the selected checkpoint is back after the job


def test_refiner_switches_models_at_the_fraction(checkpoints, monkeypatch):
    """The refiner takes over at the fraction given, in txt2img, img2img and hires fix's passes; with "Maximum number
    of checkpoints loaded" at 1 the models are swapped, at 2 both stay loaded: then the switches read no file and
    draw what swapping draws. The refiner's aesthetic scores are settings."""
    from modules import loaded_models
    monkeypatch.setattr(loaded_models, "loaded", [])
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 1)
    base = load(checkpoints("sdxl"))
    refiner_info = sd_models.CheckpointInfo(checkpoints("sdxl_refiner"))
    refiner_info.register()
    refine = dict(refiner_checkpoint=refiner_info.title, refiner_switch_at=0.5)
    swapped = txt2img(base, steps=4, **refine)
    assert a_picture(swapped)
    info = infotext_utils.parse_generation_parameters(swapped.infotexts[0])
    assert info["Refiner"] == refiner_info.short_title and float(info["Refiner switch at"]) == 0.5
    # the selected checkpoint is current again once the job is done; the swapped-out base's weights were freed when
    # the refiner loaded, though the job still held it
    assert shared.sd_model.sd_checkpoint_info.filename == base.sd_checkpoint_info.filename
    assert loaded_models.find(refiner_info) is None and all(t.is_meta for t in base.parameters())
    unused = txt2img(shared.sd_model, steps=4, refiner_checkpoint=refiner_info.title, refiner_switch_at=1.0)
    assert "Refiner" not in infotext_utils.parse_generation_parameters(unused.infotexts[0])

    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 2)
    base = shared.sd_model
    txt2img(base, steps=4, **refine)  # reads the refiner once, keeps it
    refiner = loaded_models.find(refiner_info)
    assert refiner is not None and loaded_models.loaded == [base, refiner] and shared.sd_model is base

    def no_reading(*args, **kwargs):
        raise AssertionError("a kept checkpoint was read again")
    monkeypatch.setattr(sd_models, "read_state_dict", no_reading)
    kept = txt2img(base, steps=4, **refine)
    assert kept.images[0].tobytes() == swapped.images[0].tobytes()
    image = img2img(base, steps=4, **refine)
    assert a_picture(image) and "Refiner switch at: 0.5" in image.infotexts[0]
    hires = dict(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", denoising_strength=0.6, hr_second_pass_steps=2)
    for refiner_pass, infotext in (("second pass", None), ("first pass", "first pass")):
        monkeypatch.setitem(shared.opts.data, "hires_fix_refiner_pass", refiner_pass)
        result = txt2img(base, steps=4, **hires, **refine)
        info = infotext_utils.parse_generation_parameters(result.infotexts[0])
        assert a_picture(result, (96, 96)) and info["Refiner"] == refiner_info.short_title
        assert info.get("Hires refiner") == infotext
    assert shared.sd_model is base

    e = refiner.conditioner.embedders[-1].outdim
    with torch.inference_mode():
        for negative, setting in ((False, "sdxl_refiner_high_aesthetic_score"), (True, "sdxl_refiner_low_aesthetic_score")):
            monkeypatch.setitem(shared.opts.data, setting, 4.25)
            batch = prompt_parser.SdConditioning(["a cat"], width=64, height=64, is_negative_prompt=negative)
            vector = refiner.get_learned_conditioning(batch)["vector"]
            assert torch.allclose(vector[:, -e:], timestep_embedding(torch.tensor([4.25]), e), atol=1e-6)


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
