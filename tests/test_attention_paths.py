"""PyTorch's fused attention (scaled_dot_product_attention) on every attention path: the text encoder, the UNet and
the VAE's mid-block; and --opt-channelslast changes the layout, not the picture."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modules import processing, sd_models, shared


@pytest.fixture
def sdpa_calls(monkeypatch):
    calls = []
    original = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)
    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    return calls


def test_every_attention_layer_runs_fused_attention(tiny_model, sdpa_calls):
    from ldm.modules.attention import CrossAttention
    from ldm.modules.diffusionmodules.model import AttnBlock
    model = tiny_model
    with torch.inference_mode():
        model.get_learned_conditioning(["a red circle"])
        text_layers = len(model.cond_stage_model.wrapped.transformer.text_model.encoder.layers)
        assert len(sdpa_calls) == text_layers
        sdpa_calls.clear()

        unet = model.model.diffusion_model
        context = torch.zeros(2, 77, unet.context_dim)
        unet(torch.zeros(2, 4, 8, 8), torch.tensor([1, 2]), context=context)
        assert len(sdpa_calls) == sum(isinstance(m, CrossAttention) for m in unet.modules()) > 0
        sdpa_calls.clear()

        model.decode_first_stage(torch.zeros(1, 4, 8, 8))
        assert len(sdpa_calls) == sum(isinstance(m, AttnBlock) for m in model.first_stage_model.decoder.modules()) == 1


def test_channels_last_layout_draws_the_same_picture(tiny_checkpoint_path, monkeypatch):
    def picture(model):
        p = processing.StableDiffusionProcessingTxt2Img(sd_model=model, prompt="a red circle", steps=3, width=64,
                                                        height=64, seed=9, sampler_name="Euler", do_not_save_samples=True,
                                                        do_not_save_grid=True)
        return np.asarray(processing.process_images(p).images[0], dtype=np.int16)
    info = sd_models.CheckpointInfo(tiny_checkpoint_path)
    monkeypatch.setattr(shared.cmd_opts, "opt_channelslast", False)
    plain = picture(sd_models.load_model(info))
    monkeypatch.setattr(shared.cmd_opts, "opt_channelslast", True)
    try:
        model = sd_models.load_model(info)
        weight = model.model.diffusion_model.input_blocks[0][0].weight
        assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
        assert np.abs(picture(model) - plain).max() <= 1
    finally:
        sd_models.unload_model_weights()
