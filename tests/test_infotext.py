"""Reading infotexts as A1111 does: fields, quoting, defaults, override settings."""
import pytest

from modules import infotext_utils, shared
from modules.infotext_utils import parse_generation_parameters, quote, unquote

REFERENCE_EXAMPLE = """a photo of a cat, (masterpiece:1.2)
Negative prompt: blurry, lowres
Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.7, Hires upscale: 2, Hires upscaler: Latent, Version: v1.10.1"""


def test_reference_example():
    res = parse_generation_parameters(REFERENCE_EXAMPLE, skip_fields=[])
    expected = {
        "Prompt": "a photo of a cat, (masterpiece:1.2)", "Negative prompt": "blurry, lowres",
        "Steps": "20", "Sampler": "DPM++ 2M", "Schedule type": "Karras", "CFG scale": "7", "Seed": "1234567890",
        "Size-1": "512", "Size-2": "768", "Model hash": "6ce0161689", "Model": "v1-5-pruned-emaonly",
        "Denoising strength": "0.7", "Hires upscale": "2", "Hires upscaler": "Latent", "Version": "v1.10.1",
        # defaults for fields the text does not mention
        "Clip skip": "1", "Hires resize-1": 0, "Hires resize-2": 0, "Hires sampler": "Use same sampler",
        "Hires schedule type": "Use same scheduler", "Hires checkpoint": "Use same checkpoint", "Hires prompt": "",
        "Hires negative prompt": "", "Mask mode": "Inpaint masked", "Masked content": "original",
        "Inpaint area": "Whole picture", "Masked area padding": 32, "RNG": "GPU", "Schedule max sigma": 0,
        "Schedule min sigma": 0, "Schedule rho": 0, "VAE Encoder": "Full", "VAE Decoder": "Full",
        "FP8 weight": "Disable", "Emphasis": "Original", "Refiner switch by sampling steps": False,
    }
    assert res == expected


def test_quote_only_when_needed_and_round_trip():
    assert quote("Euler a") == "Euler a"
    assert quote(7.0) == 7.0
    assert quote("a: 1, b: 2") == '"a: 1, b: 2"'
    assert quote('say "hi", ok') == '"say \\"hi\\", ok"'
    assert unquote(quote('x, "y"\nz')) == 'x, "y"\nz'
    assert unquote('"broken') == '"broken'

    text = f"p\nSteps: 5, Lora hashes: {quote('a: 123, b: 456')}, Prompt S/R: {quote('cat,dog')}, Seed: 1"
    res = parse_generation_parameters(text, skip_fields=[])
    assert res["Lora hashes"] == "a: 123, b: 456"
    assert res["Prompt S/R"] == "cat,dog"


def test_multiline_prompt_and_negative_prompt():
    text = "line one\nline two\nNegative prompt: bad\nworse\nSteps: 5, Sampler: Euler, Seed: 3"
    res = parse_generation_parameters(text, skip_fields=[])
    assert res["Prompt"] == "line one\nline two"
    assert res["Negative prompt"] == "bad\nworse"
    assert res["Steps"] == "5" and res["Seed"] == "3"


def test_a_last_line_with_fewer_than_three_params_is_prompt():
    res = parse_generation_parameters("a cat\nstyle: oil, mood: calm", skip_fields=[])
    assert res["Prompt"] == "a cat\nstyle: oil, mood: calm"
    assert "style" not in res


def test_skip_fields_and_setting_default():
    res = parse_generation_parameters(REFERENCE_EXAMPLE, skip_fields=["Seed", "Size-1"])
    assert "Seed" not in res and "Size-1" not in res and "Size-2" in res
    shared.opts.infotext_skip_pasting = ["Steps"]
    try:
        assert "Steps" not in parse_generation_parameters(REFERENCE_EXAMPLE)
    finally:
        shared.opts.infotext_skip_pasting = []


def test_no_emphasis_key_without_weights():
    res = parse_generation_parameters("plain cat\nSteps: 1, Sampler: Euler, Seed: 2", skip_fields=[])
    assert "Emphasis" not in res


def test_old_hires_fix_params_are_restored():
    res = parse_generation_parameters("p\nSteps: 20, Seed: 1, Size: 1024x1024, First pass size: 0x0", skip_fields=[])
    assert (res["Size-1"], res["Size-2"]) == (512, 512)
    assert (res["Hires resize-1"], res["Hires resize-2"]) == (1024, 1024)


def test_backcompat_for_old_versions():
    res = parse_generation_parameters("[a:b:5]\nSteps: 20, Sampler: DDIM, Seed: 1, Version: v1.5.1", skip_fields=[])
    assert res["Old prompt editing timelines"] is True
    assert res["Pad conds v0"] is True
    assert res["Downcast alphas_cumprod"] is True
    new = parse_generation_parameters(REFERENCE_EXAMPLE, skip_fields=[])
    assert "Downcast alphas_cumprod" not in new


def test_override_settings_from_infotext():
    assert infotext_utils.create_override_settings_dict(["Clip skip: 2", "ENSD: 31337", "RNG: CPU"]) == {
        "CLIP_stop_at_last_layers": 2, "eta_noise_seed_delta": 31337, "randn_source": "CPU"}
    params = parse_generation_parameters("p\nSteps: 20, Seed: 1, Clip skip: 2, RNG: GPU, Model hash: abc", skip_fields=[])
    overrides = infotext_utils.get_override_settings(params)
    names = {setting for _, setting, _ in overrides}
    assert ("Clip skip", "CLIP_stop_at_last_layers", 2) in overrides
    assert "randn_source" not in names  # same as the current setting
    assert "sd_model_checkpoint" not in names  # disable_weights_auto_swap
    with pytest.raises(ValueError, match="Name: value"):
        infotext_utils.create_override_settings_dict(["nonsense"])


def test_paste_values_cast_like_the_component():
    params = parse_generation_parameters(REFERENCE_EXAMPLE, skip_fields=[])
    fields = [(None, "Steps"), (None, "CFG scale"), (None, "Prompt"), (None, "Missing"), (None, lambda d: d["Size-1"])]
    values = infotext_utils.paste_values(params, fields, [20, 7.0, "", 1, 512])
    assert values[:3] == [20.0, 7.0, "a photo of a cat, (masterpiece:1.2)"]
    assert values[3] is infotext_utils.KEEP
    assert values[4] == 512.0


def test_old_module_name_still_works():
    from modules import generation_parameters_copypaste as old
    assert old.parse_generation_parameters is parse_generation_parameters
    assert old.PasteField is infotext_utils.PasteField


def test_image_from_url_text_reads_data_urls():
    import base64
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (3, 2), (1, 2, 3)).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    assert infotext_utils.image_from_url_text(url).size == (3, 2)
    with pytest.raises(ValueError, match="outside of allowed"):
        infotext_utils.image_from_url_text({"path": "/etc/passwd"})
