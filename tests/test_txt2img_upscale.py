"""txt2img's ✨: only the hires pass, on the selected result image, with that image's seed; the upscaled image and
its infotext take its place among the results."""
import json

from modules import infotext_utils, job_queue, txt2img
from webui import txt2img_upscale

FORM = dict(prompt="a red circle", negative_prompt="", steps=2, sampler_name="Euler", width=64, height=64, seed=10,
            cfg_scale=7, enable_hr=False, hr_scale=2, hr_upscaler="Latent", hr_second_pass_steps=1,
            denoising_strength=0.5, do_not_save_samples=True, do_not_save_grid=True)


def test_the_selected_image_is_upscaled_with_its_seed_and_takes_its_place(tiny_model):
    first = job_queue.JobResult.from_processed(txt2img.txt2img(dict(FORM, batch_size=2)))
    gallery = [(image, None) for image in first.images]
    request, index = txt2img_upscale.upscale_request(dict(FORM, batch_size=2), gallery, 1, first.info)
    assert index == 1 and int(request["seed"]) == 11 and request["batch_size"] == 1 and request["enable_hr"] is True
    upscaled = job_queue.JobResult.from_processed(txt2img.txt2img(request))
    assert [image.size for image in upscaled.images] == [(128, 128)]
    params = infotext_utils.parse_generation_parameters(upscaled.infotexts[0])
    assert int(params["Seed"]) == 11 and float(params["Hires upscale"]) == 2.0

    shown = txt2img_upscale.shown_in_place(gallery, first.info, index, upscaled)
    assert [image.size for image in shown.images] == [(64, 64), (128, 128)]
    assert shown.images[0] is first.images[0]
    infotexts = json.loads(shown.info)["infotexts"]
    assert infotexts == shown.infotexts and infotexts[0] == first.infotexts[0] and infotexts[1] == upscaled.infotexts[0]
    assert shown.infotexts[shown.index_of_first_image] == upscaled.infotexts[0]  # the infotext shown is the new one


def test_upscale_without_a_result_says_so():
    try:
        txt2img_upscale.upscale_request(FORM, [], None, "")
    except ValueError as e:
        assert "generate one first" in str(e)
    else:
        raise AssertionError("no error")
