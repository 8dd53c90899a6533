"""The one decode/encode path: the "VAE type for decode" setting reaches txt2img, and a half-precision VAE that
produces NaNs is converted to fp32 and the image decoded again instead of being lost."""
import os

import numpy as np
import pytest
import torch

from modules import devices, latent_codec, processing, sd_vae_taesd, shared


def run_txt2img(model, **kwargs):
    params = dict(sd_model=model, prompt="a red circle", negative_prompt="", steps=2, cfg_scale=7, width=64, height=64,
                  seed=7, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    return processing.process_images(processing.StableDiffusionProcessingTxt2Img(**params))


@pytest.fixture
def taesd_weights(tmp_path, monkeypatch):
    """A TAESD decoder file in models/VAE-approx (random weights: it only has to differ from the full VAE)."""
    import safetensors.torch
    monkeypatch.setattr(shared, "models_path", str(tmp_path))
    monkeypatch.setattr(sd_vae_taesd, "_decoders", {})
    os.makedirs(tmp_path / "VAE-approx")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = sd_vae_taesd.decoder().state_dict()
    safetensors.torch.save_file(state, str(tmp_path / "VAE-approx" / "taesd_decoder.safetensors"))
    yield
    monkeypatch.setattr(sd_vae_taesd, "_decoders", {})


@pytest.fixture
def decode_method(monkeypatch):
    def set_method(value):
        monkeypatch.setitem(shared.opts.data, "sd_vae_decode_method", value)
    return set_method


def test_vae_type_for_decode_reaches_txt2img(tiny_model, taesd_weights, decode_method):
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    decode_method("TAESD")
    decoder = sd_vae_taesd.decoder_model()
    with torch.inference_mode():
        expected = decoder(latent) * 2 - 1
        assert torch.equal(latent_codec.decode_first_stage(tiny_model, latent), expected)
    taesd = run_txt2img(tiny_model)
    assert "VAE Decoder: TAESD" in taesd.infotexts[0]

    decode_method("Full")
    with torch.inference_mode():
        assert torch.equal(latent_codec.decode_first_stage(tiny_model, latent), tiny_model.decode_first_stage(latent))
    full = run_txt2img(tiny_model)
    assert "VAE Decoder" not in full.infotexts[0]
    assert np.asarray(taesd.images[0]).tobytes() != np.asarray(full.images[0]).tobytes()


@pytest.fixture
def nan_in_half_vae(tiny_model, monkeypatch):
    """The VAE in fp16 (as on a GPU without --no-half-vae) whose decoder overflows to NaN in fp16, as SDXL's does."""
    decoder = tiny_model.first_stage_model.decoder

    def overflow_in_half(module, inputs, output):
        return torch.full_like(output, float("nan")) if module.conv_out.weight.dtype == torch.float16 else output

    handle = decoder.register_forward_hook(overflow_in_half)
    monkeypatch.setattr(devices, "dtype_vae", torch.float16)
    tiny_model.first_stage_model.to(torch.float16)
    yield tiny_model
    handle.remove()
    tiny_model.first_stage_model.to(torch.float32)
    devices.dtype_vae = torch.float32


def test_nan_from_half_vae_retries_in_fp32_and_keeps_the_image(nan_in_half_vae, capsys):
    model = nan_in_half_vae
    result = run_txt2img(model)
    assert len(result.images) == 1
    pixels = np.asarray(result.images[0])
    assert pixels.shape == (64, 64, 3) and pixels.std() > 0  # a real picture, not a black square
    assert "Web UI will now convert VAE into 32-bit float and retry" in capsys.readouterr().err
    assert devices.dtype_vae == torch.float32 and model.first_stage_model.decoder.conv_out.weight.dtype == torch.float32
    # the retried image is the one an fp32 VAE gives from the start
    again = run_txt2img(model)
    assert np.asarray(again.images[0]).tobytes() == pixels.tobytes()


def test_nan_without_automatic_fp32_is_a_clear_error(nan_in_half_vae, monkeypatch):
    monkeypatch.setitem(shared.opts.data, "auto_vae_precision", False)
    with pytest.raises(devices.NansException, match="NaNs was produced in VAE"):
        run_txt2img(nan_in_half_vae)
