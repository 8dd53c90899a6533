"""Where the engine's tensors live, shown without a GPU: a function that takes its device from its input is called
with a `meta` tensor (which carries a device but no data, so any copy to RAM fails), and a sampler loop is checked
for reading numbers back from the device at every step (on a GPU each such read waits for the step to finish).
The GPU runs of the same paths are in tests/test_cuda_paths.py."""
import pytest
import torch

from modules import latent_codec, model_families, sd_samplers_timesteps_impl


def test_the_cheap_preview_is_computed_where_the_latent_is():
    """The "Approx cheap" preview/decode of a GPU latent stays on the GPU (it used to go to RAM and back)."""
    latent = torch.zeros(4, 8, 12, device="meta")
    preview = latent_codec.cheap_approximation(latent)
    assert preview.device.type == "meta" and preview.shape == (3, 8, 12)
    sdxl = latent_codec.cheap_approximation(latent.half(), model_families.SDXL_LATENT)
    assert sdxl.device.type == "meta" and sdxl.dtype == torch.float32


def test_the_cheap_preview_still_maps_the_channels_to_rgb():
    latent = torch.zeros(4, 2, 2)
    latent[0] = 1.0
    preview = latent_codec.cheap_approximation(latent)
    assert torch.allclose(preview[:, 0, 0], torch.tensor(model_families.SD1_LATENT.rgb_factors[0]))


class _Schedule:
    def __init__(self):
        self.alphas_cumprod = torch.linspace(0.9991, 0.0047, 1000)


class _NoisePredictor:
    """Stands in for the CFG denoiser: predicts a fixed fraction of x as the noise."""

    def __init__(self):
        self.inner_model = type("Wrapper", (), {"inner_model": _Schedule()})()
        self.cond_scale_miltiplier = 1.0
        self.need_last_noise_uncond = False
        self.last_noise_uncond = None
        self.timesteps_seen = []

    def __call__(self, x, t, **kwargs):
        self.timesteps_seen.append(t)
        self.last_noise_uncond = 0.1 * x
        return 0.1 * x


@pytest.mark.parametrize("sampler", ["ddim", "ddim_cfgpp", "plms"])
def test_timestep_samplers_read_no_number_back_from_the_device_per_step(sampler, monkeypatch):
    """DDIM, DDIM CFG++ and PLMS read their schedule numbers from the device once per pass, not with an .item() per
    step (which on a GPU makes every step wait for the previous one to finish)."""
    reads = []
    original_item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: reads.append(self.shape) or original_item(self))
    function = getattr(sd_samplers_timesteps_impl, sampler)
    timesteps = torch.clip(torch.arange(0, 1000, 125) + 1, 0, 999)
    model = _NoisePredictor()
    torch.manual_seed(0)
    x = function(model, torch.randn(2, 4, 8, 8), timesteps, disable=True)
    assert reads == []
    assert torch.isfinite(x).all()
    calls = len(timesteps) + (1 if sampler == "plms" else 0)  # PLMS's first step calls the model twice
    assert len(model.timesteps_seen) == calls
    assert model.timesteps_seen[0].tolist() == [timesteps[-1].item()] * 2  # the highest timestep first, as a tensor


class _MetaVae:
    """Stands in for a model whose VAE runs on the device: its latents are 1/8 of the image, on the image's device."""
    dtype = torch.float32

    def encode_first_stage(self, x):
        return x.new_zeros(x.shape[0], 4, x.shape[2] // 8, x.shape[3] // 8)

    def get_first_stage_encoding(self, z):
        return z


def test_inpainting_conditioning_of_an_image_in_ram_lands_with_the_latents(monkeypatch):
    """An inpainting model's extra channels built from an image in RAM (an extension's call) while the model runs
    elsewhere: the encoded image comes back on the model's device and the mask follows it (it used to stay in RAM,
    "Expected all tensors to be on the same device" on a GPU)."""
    from PIL import Image

    from modules import processing, shared
    monkeypatch.setattr(shared, "device", torch.device("meta"))  # "the GPU": any tensor left in RAM would not match
    p = processing.StableDiffusionProcessing.__new__(processing.StableDiffusionProcessing)
    p.sd_model = _MetaVae()
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    source = torch.zeros(1, 3, 64, 64)
    conditioning = p.inpainting_image_conditioning(source, torch.zeros(1, 4, 8, 8, device="meta"), image_mask=mask)
    assert conditioning.device.type == "meta" and conditioning.shape == (1, 5, 8, 8)


def test_the_inpainting_masks_are_made_where_the_init_latent_is():
    """img2img's mask and nmask, blended with the init latent at every step, are made on its device and dtype."""
    from PIL import Image

    from modules import processing
    p = processing.StableDiffusionProcessingImg2Img.__new__(processing.StableDiffusionProcessingImg2Img)
    p.init_latent = torch.zeros(1, 4, 8, 8, device="meta", dtype=torch.float16)
    p.mask_round, p.inpainting_fill, p.extra_generation_params = True, 1, {}
    latent_mask = Image.new("L", (64, 64), 0)
    p._init_latent_mask(latent_mask, [1])
    for mask in (p.mask, p.nmask):
        assert mask.device.type == "meta" and mask.dtype == torch.float16 and mask.shape == (4, 8, 8)
