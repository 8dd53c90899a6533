"""Live previews: the cheap approximation always works; TAESD is used when its weights are in models/VAE-approx."""
import os

import torch

from modules import live_preview, sd_vae_taesd, shared


def test_cheap_approximation_gives_an_8x_preview():
    image = live_preview.latent_to_image(torch.randn(4, 8, 12), "Approx cheap")
    assert image.size == (96, 64)


def test_taesd_used_when_its_weights_exist(tmp_path, monkeypatch):
    import safetensors.torch
    monkeypatch.setattr(shared, "models_path", str(tmp_path))
    monkeypatch.setattr(sd_vae_taesd, "_decoders", {})
    assert sd_vae_taesd.decoder_model() is None
    os.makedirs(tmp_path / "VAE-approx")
    torch.manual_seed(0)
    state = sd_vae_taesd.decoder().state_dict()
    assert "1.weight" in state and "3.conv.0.weight" in state  # the published file's key layout
    safetensors.torch.save_file(state, str(tmp_path / "VAE-approx" / "taesd_decoder.safetensors"))
    model = sd_vae_taesd.decoder_model()
    assert model is not None
    image = live_preview.latent_to_image(torch.randn(4, 8, 8), "TAESD")
    assert image.size == (64, 64)
    latent = torch.randn(4, 8, 8)
    assert live_preview.latent_to_image(latent, "TAESD").tobytes() != live_preview.latent_to_image(latent, "Approx cheap").tobytes()


def test_preview_of_the_current_latent():
    saved = shared.opts.show_progress_type
    shared.opts.show_progress_type = "Approx cheap"
    try:
        shared.state.current_latent = torch.randn(2, 4, 8, 8)
        image = live_preview.current_preview()
        assert image is not None and image.size == (64, 64)
        shared.state.current_latent = None
        assert live_preview.current_preview() is None
    finally:
        shared.opts.show_progress_type = saved
