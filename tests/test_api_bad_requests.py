"""A careless or hostile API client, in process (no server, no model for what is refused before a job starts): every
bad input is a 4xx naming it, nothing bad is stored, and a null means "not set"."""
import base64
import io
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from modules import img2img, processing_request, shared
from modules.api.api import Api
from modules.processing_request import RequestError, check_answer_size, normalize


@pytest.fixture(scope="module")
def client():
    app = FastAPI()
    Api(app)
    return TestClient(app)


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.setattr(shared, "config_filename", str(tmp_path / "config.json"))
    saved = dict(shared.opts.data)
    yield tmp_path / "config.json"
    shared.opts.data.clear()
    shared.opts.data.update(saved)


def png(size=(64, 64)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# ---------------------------------------------------------------------------------------------- settings

@pytest.mark.parametrize("key, value, words", [
    ("outdir_samples", 5, "outdir_samples must be a string, got 5"),
    ("CLIP_stop_at_last_layers", "abc", "CLIP_stop_at_last_layers must be a number, got 'abc'"),
    ("show_progressbar", None, "show_progressbar must be true or false, not null"),
    ("quicksettings_list", "sd_model_checkpoint", "quicksettings_list must be a list"),
    ("jpeg_quality", -5, "jpeg_quality must be between 1 and 100, got -5"),
    ("live_previews_image_format", "exe", "'exe' is not one of its choices"),
    ("samples_format", "exe", "samples_format must be an image file format this server can save"),
])
def test_options_of_the_wrong_kind_are_refused_and_nothing_is_stored(client, config_file, key, value, words):
    """A value of the wrong kind used to be stored and saved: outdir_samples=5 made every later generation fail."""
    before = shared.opts.data.get(key)
    response = client.post("/sdapi/v1/options", json={"samples_format": "jpg", key: value})
    assert response.status_code == 422 and words in response.text, response.text
    assert response.json()["detail"][0]["loc"] == ["body", key]
    assert shared.opts.data.get(key) == before and shared.opts.samples_format == "png" and not config_file.exists()


def test_options_round_trip_and_good_values_are_stored(client, config_file):
    """What GET /options answers can be posted back whole; a good value of each kind is stored."""
    assert client.post("/sdapi/v1/options", json=client.get("/sdapi/v1/options").json()).status_code == 200
    good = {"samples_format": "webp", "jpeg_quality": 90, "CLIP_stop_at_last_layers": 2, "show_progressbar": False,
            "live_previews_image_format": "jpeg", "quicksettings_list": ["sd_model_checkpoint", "sd_vae"]}
    assert client.post("/sdapi/v1/options", json=good).status_code == 200
    assert {k: shared.opts.data[k] for k in good} == good
    assert json.loads(config_file.read_text())["samples_format"] == "webp"


def test_an_empty_checkpoint_option_is_refused_by_name(client, config_file):
    """sd_model_checkpoint null was a 500 (AttributeError) after the check let it through."""
    shared.opts.data["sd_model_checkpoint"] = "demo-shapes.safetensors [3a838d58cb]"
    response = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": None})
    assert response.status_code == 400 and "Checkpoint not found: None" in response.json()["errors"]


@pytest.mark.parametrize("override, field, words", [
    ({"CLIP_stop_at_last_layers": "abc"}, "override_settings.CLIP_stop_at_last_layers", "must be a number"),
    ({"eta_noise_seed_delta": "x"}, "override_settings.eta_noise_seed_delta", "must be a number"),
    # a setting this UI lacks (A1111's sd_unet, an extension's) is left out, not refused: the bad one is named
    ({"sd_unet": "Automatic", "no_such_setting": 1, "jpeg_quality": "x"}, "override_settings.jpeg_quality", "must be a number"),
    ({"samples_format": "exe"}, "override_settings.samples_format", "image file format"),
])
def test_bad_override_settings_are_refused_before_the_job(client, override, field, words):
    """These were a 500 from inside the job (ValueError: invalid literal for int()), or silently ignored."""
    response = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "override_settings": override})
    assert response.status_code == 422 and words in response.text, response.text
    assert response.json()["errors"].startswith(field)


def test_an_unknown_vae_override_is_refused(client):
    response = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "override_settings": {"sd_vae": "nope"}})
    assert response.status_code == 400 and "VAE not found: 'nope'" in response.json()["errors"]


# ---------------------------------------------------------------------------------------------- request bodies

@pytest.mark.parametrize("body", [b"\xff\xfe\x00", b'{"prompt": "\xff"}'])
def test_a_body_that_is_not_utf8_is_a_400_saying_so(client, body):
    response = client.post("/sdapi/v1/txt2img", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not UTF-8 JSON" in response.json()["detail"], response.text


def test_nan_in_a_number_field_is_a_422_naming_it(client):
    """The validation answer quoted the NaN back, which JSON cannot hold: a bare "Internal Server Error"."""
    response = client.post("/sdapi/v1/txt2img", content=b'{"steps": NaN}', headers={"content-type": "application/json"})
    assert response.status_code == 422 and "steps" in response.json()["errors"], response.text


@pytest.mark.parametrize("path, payload, field", [
    ("/sdapi/v1/img2img", {"init_images": ["TRUNCATED"]}, "init_images[0]"),
    ("/sdapi/v1/img2img", {"init_images": ["GOOD"], "mask": "TRUNCATED"}, "mask"),
    ("/sdapi/v1/extra-single-image", {"image": "TRUNCATED"}, "image"),
    ("/sdapi/v1/png-info", {"image": "TRUNCATED"}, "image"),
])
def test_a_truncated_image_is_refused_naming_the_field(client, path, payload, field):
    """A PNG cut short opened fine and failed later, inside the job: a 500 "image file is truncated"."""
    images = {"TRUNCATED": png()[:120], "GOOD": png()}
    payload = {k: [images[x] for x in v] if isinstance(v, list) else images[v] for k, v in payload.items()}
    response = client.post(path, json=payload)
    assert response.status_code == 422 and response.json()["errors"].startswith(f"{field} could not be decoded"), response.text


# ---------------------------------------------------------------------------------------------- normalisation

def test_null_fields_mean_not_set():
    """steps/width/cfg_scale/prompt null were a 500 (TypeError inside the job); they take the field's default."""
    request = normalize("txt2img", {"steps": None, "width": None, "height": None, "batch_size": None, "n_iter": None,
                                    "cfg_scale": None, "prompt": None, "negative_prompt": None, "subseed_strength": None})
    assert "steps" not in request and "prompt" not in request  # the processing class's defaults apply
    p = processing_request.create_processing("txt2img", request)
    assert (p.steps, p.width, p.cfg_scale, p.prompt, p.subseed_strength) == (50, 512, 7.0, "", 0)
    assert "denoising_strength" not in normalize("img2img", {"denoising_strength": None})


@pytest.mark.parametrize("fields, field", [
    ({"hr_scale": 0}, "hr_scale"),
    ({"hr_scale": 0.01}, "hr_scale"),
    ({"hr_resize_x": 1}, "hr_resize_x"),
])
def test_a_hires_target_under_8_pixels_is_refused(fields, field):
    """These were a 500 from the upscaler inside the job ("Input and output sizes should be greater than 0")."""
    with pytest.raises(RequestError, match="too small") as caught:
        normalize("txt2img", {"enable_hr": True, "width": 64, "height": 64, **fields})
    assert caught.value.field == field


def test_an_api_job_of_more_images_than_one_answer_holds_is_refused(client):
    """n_iter 10000 at 512x512 (all within the per-field limits) was accepted: 10000 images held and base64-encoded
    at once, about 8 GB before the answer was written."""
    response = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "n_iter": 10000, "width": 512, "height": 512})
    assert response.status_code == 422 and response.json()["errors"].startswith("n_iter")
    assert "more than 1073741824 pixels in one job" in response.json()["errors"]
    with pytest.raises(RequestError, match="20 images of 8192x8192"):  # the hires fix's size counts
        check_answer_size("txt2img", normalize("txt2img", {"n_iter": 20, "width": 4096, "height": 4096, "enable_hr": True, "hr_scale": 2}))
    # the UI's largest batch (100 x 8) of SDXL pictures with hires fix 1.5x is not refused: its images are saved as
    # they come, and A1111 refuses none
    normalize("txt2img", {"n_iter": 100, "batch_size": 8, "width": 1024, "height": 1024, "enable_hr": True, "hr_scale": 1.5})


@pytest.mark.parametrize("seed", [2 ** 63, 2 ** 64 - 1, -2 ** 63 - 1, 2 ** 70])
def test_a_seed_beyond_64_bits_is_refused(seed):
    """These were a 500 from the random generator (or from writing the answer)."""
    with pytest.raises(RequestError, match="seed must be between") as caught:
        normalize("txt2img", {"seed": seed})
    assert caught.value.field == "seed"


def test_big_seeds_keep_every_digit():
    """Whole numbers went through float: 12345678901234567 became 12345678901234568."""
    assert normalize("txt2img", {"seed": 12345678901234567})["seed"] == 12345678901234567
    assert normalize("txt2img", {"subseed": "12345678901234567"})["subseed"] == 12345678901234567


# ---------------------------------------------------------------------------------------------- img2img fields

@pytest.mark.parametrize("fields, field", [
    ({"resize_mode": 7}, "resize_mode"),
    ({"inpainting_fill": -1}, "inpainting_fill"),
    ({"mask_blur": -5}, "mask_blur_x"),
    ({"inpaint_full_res_padding": -10}, "inpaint_full_res_padding"),
    ({"init_images": [Image.new("RGB", (64, 64))] * 2, "batch_size": 1}, "init_images"),
])
def test_img2img_field_errors_name_the_field(tiny_model, fields, field):
    """The engine's own checks answered a 500 (ValueError/RuntimeError) through the API; they are RequestErrors
    naming the field now, so the API answers 422."""
    request = {"prompt": "x", "steps": 1, "width": 64, "height": 64, "init_images": [Image.new("RGB", (64, 64))],
               "do_not_save_samples": True, "do_not_save_grid": True, **fields}
    with pytest.raises(RequestError) as caught:
        img2img.img2img(request)
    assert caught.value.field == field and caught.value.status_code == 422


def test_a_lone_surrogate_in_the_prompt_is_refused_naming_it(client):
    """JSON may carry "\\ud800"; it reached the tokenizer: a 500 (TypeError: TextEncodeInput must be ...)."""
    response = client.post("/sdapi/v1/txt2img", content=b'{"prompt": "a \\ud800 cat"}', headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["errors"].startswith("prompt is not valid text"), response.text


def test_an_unknown_refiner_checkpoint_set_by_a_script_names_the_field(tiny_model):
    """The refiner always-on script sets p.refiner_checkpoint after the request was checked: that was a 500
    (ValueError); it is the same 400 naming refiner_checkpoint and listing the checkpoints as the request field's."""
    from modules import processing
    p = processing.StableDiffusionProcessingTxt2Img(prompt="x", steps=1, width=64, height=64, refiner_checkpoint="nope.ckpt",
                                                    do_not_save_samples=True, do_not_save_grid=True)
    with pytest.raises(RequestError, match="Checkpoint not found: 'nope.ckpt'; valid checkpoints") as caught:
        processing.process_images(p)
    assert caught.value.field == "refiner_checkpoint" and caught.value.status_code == 400


def test_a_refiner_switch_point_that_is_not_a_number_names_the_field(tiny_model):
    """alwayson_scripts {"refiner": {"args": [true, "<model>", "x"]}} was a 500 from the sampler
    ("'<' not supported between instances of 'Tensor' and 'str'")."""
    from modules import processing
    p = processing.StableDiffusionProcessingTxt2Img(prompt="x", steps=1, width=64, height=64, refiner_switch_at="x",
                                                    refiner_checkpoint=tiny_model.sd_checkpoint_info.title, do_not_save_samples=True,
                                                    do_not_save_grid=True)
    with pytest.raises(RequestError, match="refiner_switch_at must be a number, got 'x'") as caught:
        processing.process_images(p)
    assert caught.value.field == "refiner_switch_at"


@pytest.mark.parametrize("path, payload, field", [
    ("/sdapi/v1/extra-batch-images", {"imageList": [{"data": "BIG", "name": f"{i}.png"} for i in range(3)]}, "imageList[2].data"),
    ("/sdapi/v1/img2img", {"init_images": ["BIG", "BIG"], "batch_size": 2, "mask": "BIG"}, "mask"),
])
def test_the_images_of_one_request_have_a_pixel_budget(client, monkeypatch, path, payload, field):
    """Each image was checked on its own: a body of many plain 8192x8192 PNGs (a few hundred KB each) was decoded
    whole, 200 MB an image, until the server ran out of memory. (Here with a budget of two 64x64 images.)"""
    from modules.api import api
    monkeypatch.setattr(api, "MAX_REQUEST_PIXELS", 2 * 64 * 64)
    big = png()
    payload = {k: [{**x, "data": big} if isinstance(x, dict) else big for x in v] if isinstance(v, list) else big if v == "BIG" else v
               for k, v in payload.items()}
    response = client.post(path, json=payload)
    assert response.status_code == 413 and response.json()["errors"].startswith(f"{field}: the images of this request"), response.text
