"""The engine entry points (modules.txt2img / modules.img2img) and request normalisation: legacy names, unknown
fields, casts, and every refusal naming its field before anything is allocated."""
import numpy as np
import pytest
from PIL import Image

from modules import img2img, processing, processing_request, txt2img
from modules.processing_request import RequestError, normalize

BASE = {"prompt": "a red circle", "steps": 3, "width": 64, "height": 64, "seed": 11, "sampler_name": "Euler",
        "do_not_save_samples": True, "do_not_save_grid": True}


def test_txt2img_entry_point_gives_the_image_the_processing_object_gives(tiny_model):
    direct = processing.process_images(processing.StableDiffusionProcessingTxt2Img(sd_model=tiny_model, **BASE))
    through_entry = txt2img.txt2img(dict(BASE))
    assert np.array_equal(np.asarray(direct.images[0]), np.asarray(through_entry.images[0]))
    assert through_entry.all_seeds == [11]


def test_img2img_entry_point_with_a_mask_keeps_pixels_outside_it(tiny_model):
    rng = np.random.default_rng(0)
    init = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    processed = img2img.img2img({**BASE, "init_images": [init], "mask": mask, "mask_blur": 0, "inpainting_fill": 1,
                                 "inpaint_full_res": False, "denoising_strength": 0.9})
    out = np.asarray(processed.images[0].convert("RGB"))
    outside = np.asarray(mask) == 0
    assert np.array_equal(out[outside], np.asarray(init)[outside])
    assert not np.array_equal(out[~outside], np.asarray(init)[~outside])


def test_legacy_sampler_index_unknown_fields_and_string_numbers():
    request = normalize("txt2img", {"sampler_index": "Euler a", "steps": "7", "cfg_scale": "6.5", "no_such_field": 1,
                                    "seed": "", "hr_sampler_name": "Use same sampler"})
    assert request["sampler_name"] == "Euler a" and request["steps"] == 7 and request["cfg_scale"] == 6.5
    assert "no_such_field" not in request and "sampler_index" not in request
    assert request["seed"] == -1 and request["hr_sampler_name"] is None
    assert normalize("txt2img", {"sampler_name": "DPM++ 2M Karras"})[("sampler_name")] == "DPM++ 2M"
    assert normalize("txt2img", {"sampler_name": "DPM++ 2M Karras"})["scheduler"] == "Karras"


@pytest.mark.parametrize("kind, fields, field, status, words", [
    ("txt2img", {"width": 100000}, "width", 422, "between 8 and 8192"),
    ("txt2img", {"steps": 0}, "steps", 422, "between 1 and 1000"),
    ("txt2img", {"steps": 10.5}, "steps", 422, "whole number"),
    ("txt2img", {"cfg_scale": "lots"}, "cfg_scale", 422, "a number"),
    ("txt2img", {"batch_size": 64, "width": 4096, "height": 4096}, "batch_size", 422, "pixels in one pass"),
    ("txt2img", {"n_iter": 10 ** 9}, "n_iter", 422, "between 1"),
    ("txt2img", {"enable_hr": True, "hr_scale": 16, "width": 1024, "height": 1024}, "hr_scale", 422, "too large"),
    ("img2img", {"denoising_strength": 2}, "denoising_strength", 422, "between 0.0 and 1.0"),
    ("txt2img", {"sampler_name": "Nope"}, "sampler_name", 400, "Euler a"),
    ("txt2img", {"scheduler": "Nope"}, "scheduler", 400, "Karras"),
    ("txt2img", {"enable_hr": True, "hr_upscaler": "Nope"}, "hr_upscaler", 400, "Latent (bicubic)"),
    ("txt2img", {"hr_sampler_name": "Nope"}, "hr_sampler_name", 400, "DPM++ 2M"),
    ("txt2img", {"override_settings": {"sd_model_checkpoint": "no-such-model"}}, "override_settings.sd_model_checkpoint", 400, "Checkpoint not found"),
    ("txt2img", {"override_settings": "CLIP_stop_at_last_layers=2"}, "override_settings", 422, "object"),
])
def test_bad_fields_are_refused_naming_the_field(kind, fields, field, status, words):
    with pytest.raises(RequestError) as caught:
        normalize(kind, fields)
    assert caught.value.field == field and caught.value.status_code == status
    assert field.split(".")[-1] in str(caught.value) or words in str(caught.value)
    assert words in str(caught.value)


def test_an_unknown_script_names_the_valid_ones(monkeypatch):
    from modules import scripts

    class Runner(scripts.ScriptRunner):
        pass
    runner = Runner()
    monkeypatch.setattr(scripts, "scripts_txt2img", runner)
    with pytest.raises(RequestError) as caught:
        processing_request.script_args_from_api("txt2img", script_name="no such script")
    assert caught.value.field == "script_name" and "Script 'no such script' not found" in str(caught.value)
    with pytest.raises(RequestError) as caught:
        processing_request.script_args_from_api("txt2img", alwayson_scripts={"no such script": {"args": []}})
    assert caught.value.field == "alwayson_scripts" and "not found" in str(caught.value)
    assert processing_request.script_args_from_api("txt2img") == [0]
