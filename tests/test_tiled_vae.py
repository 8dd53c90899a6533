"""Tiled VAE decode/encode: the same picture as the whole-image pass (seams included), and tiling chosen only when the
whole pass would not fit."""
import os

import pytest
import torch

from modules import sd_vae_tiled
from tests import checkpoint_factory as factory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")


@pytest.fixture(scope="module")
def vae():
    from ldm.models.autoencoder import AutoencoderKL
    config = dict(factory.TINY_VAE)
    embed_dim = config.pop("embed_dim")
    ddconfig = dict(double_z=True, resolution=256, in_channels=3, out_ch=3, attn_resolutions=[], dropout=0.0, **config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        return AutoencoderKL(ddconfig=ddconfig, embed_dim=embed_dim).eval().requires_grad_(False)


def to_pixels(decoded):
    return ((decoded.float() + 1) / 2).clamp(0, 1)


def test_tiled_decode_is_the_whole_image_decode_everywhere(vae):
    z = torch.randn(1, 4, 16, 24, generator=torch.Generator().manual_seed(0))
    whole = to_pixels(vae.decode(z))
    tiled = to_pixels(sd_vae_tiled.decode_tiled(vae, z, tile=8))  # 2x3 tiles, seams at 64 and 128 px
    assert tiled.shape == whole.shape == (1, 3, 128, 192)
    assert (tiled - whole).abs().max() < 1 / 255  # on the seams too: each tile's margin covers the conv reach


def test_tiled_decode_of_the_demo_vae_matches(vae):
    if not os.path.exists(DEMO):
        pytest.skip("demo checkpoint not present")
    from modules.weight_loading import read_safetensors
    from ldm.models.autoencoder import AutoencoderKL
    sd = {k[len("first_stage_model."):]: v.float() for k, v in read_safetensors(DEMO).items() if k.startswith("first_stage_model.")}
    ch = sd["encoder.conv_in.weight"].shape[0]
    ddconfig = dict(double_z=True, z_channels=4, resolution=256, in_channels=3, out_ch=3, ch=ch, ch_mult=(1, 1, 1, 1),
                    num_res_blocks=1, attn_resolutions=[], dropout=0.0)
    with torch.device("meta"):
        demo = AutoencoderKL(ddconfig=ddconfig, embed_dim=4)
    demo.load_state_dict(sd, assign=True)
    z = torch.randn(1, 4, 12, 20, generator=torch.Generator().manual_seed(1)) * 4
    whole = to_pixels(demo.decode(z))
    tiled = to_pixels(sd_vae_tiled.decode_tiled(demo, z, tile=6))
    assert (tiled - whole).abs().max() < 1 / 255


def test_tiled_encode_gives_the_whole_image_latents(vae):
    x = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(2)) * 2 - 1
    whole = vae.encode(x)
    tiled = sd_vae_tiled.encode_tiled(vae, x, tile=8)
    torch.testing.assert_close(tiled.mean, whole.mean, rtol=0, atol=1e-4)
    torch.testing.assert_close(tiled.logvar, whole.logvar, rtol=0, atol=1e-4)


def test_tiles_only_when_the_whole_pass_would_not_fit(vae):
    cuda = torch.device("cuda")
    whole = sd_vae_tiled.PEAK_TENSORS * sd_vae_tiled.full_resolution_bytes(vae, 1, 1024, 1024, torch.float16)
    assert sd_vae_tiled.plan(vae, 1, 1024, 1024, torch.float16, cuda, available=whole) is None
    roomy = sd_vae_tiled.plan(vae, 1, 1024, 1024, torch.float16, cuda, available=whole // 2)
    tight = sd_vae_tiled.plan(vae, 1, 1024, 1024, torch.float16, cuda, available=whole // 64)
    assert 128 > roomy > tight >= 8  # a tile's working set (margins included) takes at most half of what is free


def test_a_whole_decode_that_runs_out_of_memory_is_retried_in_tiles(vae, monkeypatch, capsys):
    z = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(3))
    expected = vae.decode(z)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
    monkeypatch.setattr(vae, "decode", out_of_memory)
    monkeypatch.setattr(sd_vae_tiled, "available_bytes", lambda device: 200 * 2 ** 20)
    result = sd_vae_tiled.decode(vae, z)
    assert "decoding in tiles" in capsys.readouterr().out
    assert (to_pixels(result) - to_pixels(expected)).abs().max() < 1 / 255


def test_the_pipeline_tiles_a_decode_and_encode_that_would_not_fit(tiny_model, monkeypatch, capsys):
    """Every decode/encode of a loaded model goes through the size check: with little free memory, txt2img and img2img
    tile themselves and make the same pictures."""
    import numpy as np
    from PIL import Image
    from modules import processing

    def job(cls, **kwargs):
        p = cls(sd_model=tiny_model, prompt="a red circle", steps=3, width=128, height=128, seed=4, sampler_name="Euler",
                do_not_save_samples=True, do_not_save_grid=True, **kwargs)
        return np.asarray(processing.process_images(p).images[0], dtype=np.int16)

    init = Image.new("RGB", (128, 128), (200, 40, 40))
    txt2img = job(processing.StableDiffusionProcessingTxt2Img)
    img2img = job(processing.StableDiffusionProcessingImg2Img, init_images=[init], denoising_strength=0.5)
    capsys.readouterr()
    monkeypatch.setattr(sd_vae_tiled, "available_bytes", lambda device: 2 * 2 ** 20)
    assert np.abs(job(processing.StableDiffusionProcessingTxt2Img) - txt2img).max() <= 1
    assert np.abs(job(processing.StableDiffusionProcessingImg2Img, init_images=[init], denoising_strength=0.5) - img2img).max() <= 1
    out = capsys.readouterr().out
    assert "decoding in tiles" in out and "encoding in tiles" in out
