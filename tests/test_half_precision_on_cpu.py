"""The GPU precision paths rehearsed on the CPU, which computes in float16 and bfloat16 too: each precision flag's
dtypes chosen as for a GPU (devices.choose_precision("cuda", ...)), the model loaded and run on the CPU in them, and
every generation path (txt2img, img2img, inpainting, hires fix, SDXL with its refiner, a LoRA) compared with the fp32
picture of the same job. What the CPU cannot stand in for (CUDA's autocast op lists, its kernels, its noise) is in
test_cuda_paths.py.

FP8 storage is refused on the CPU on purpose (test_precision.py): here the device check answers as a GPU's does, so
the real conversion (modules.fp8_weights.apply) runs on the loaded model.

Bounds, from measurements (mean / worst pixel difference to fp32, pixels in [0, 1]): the fp16 modes stay under
0.004 / 0.17, so 0.01 / 0.25 (test_cuda_paths' worst); bfloat16 (8 bits of mantissa) and FP8 weights reach a mean of
0.032 (img2img: the bf16 VAE's round trip alone is 0.03) and flip single edge pixels by up to 0.8, so 0.04 with no
bound on the worst pixel. A different seed's picture is 0.03-0.2 away; the LoRA job, whose picture differs least from
another's, also checks that it is much nearer the fp32 LoRA picture than the fp32 picture without the LoRA.
"""
import contextlib
import os
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from PIL import Image

from modules import devices, modelloader, processing, script_callbacks, sd_models, shared
from tests import checkpoint_factory as factory
from tests.model_session import loaded_for_the_test

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")
PROMPT = "a large red circle in the centre on a white background"
LORA_PROMPT = "a large turquoise circle in the centre on a white background"
FLAG_DEFAULTS = dict(no_half=False, no_half_vae=False, precision="autocast", upcast_sampling=False, bf16=False,
                     medvram=False, lowvram=False, medvram_sdxl=False, compile=False, use_cpu=[])
FP16_BOUNDS, LOOSE_BOUNDS = (0.01, 0.25), (0.04, 1.0)
f16, bf16, f32, fp8 = torch.float16, torch.bfloat16, torch.float32, torch.float8_e4m3fn


@dataclass(frozen=True)
class Mode:
    flags: dict
    unet: torch.dtype        # the UNet's Linear/Conv weights (and the text encoder's)
    compute: torch.dtype     # the dtype the UNet computes in (its timestep embedding's weights)
    vae: torch.dtype
    autocast: bool           # whether the UNet runs under autocast
    settings: dict = field(default_factory=dict)
    bounds: tuple = FP16_BOUNDS


MODES = {
    "fp16": Mode({}, f16, f16, f16, True),  # a GPU's default
    "bf16 setting": Mode({}, bf16, bf16, bf16, True, {"half_precision_type": "bfloat16"}, LOOSE_BOUNDS),
    "--precision half": Mode(dict(precision="half"), f16, f16, f16, False),
    "--no-half-vae": Mode(dict(no_half_vae=True), f16, f16, f32, True),
    "--upcast-sampling": Mode(dict(upcast_sampling=True), f16, f16, f16, False),
    "--precision full": Mode(dict(precision="full"), f16, f16, f16, False),
    "FP8 weight": Mode({}, fp8, f16, f16, True, {"fp8_storage": "Enable"}, LOOSE_BOUNDS),
}


def _precision_as_on_a_gpu(cmd_opts):
    """devices.refresh_precision for a GPU that computes in bfloat16 (Ampere and later)."""
    devices.set_precision(devices.choose_precision("cuda", cmd_opts, devices.wants_bf16(cmd_opts), bf16_supported=True))


@contextlib.contextmanager
def gpu_dtypes(checkpoint, flags=None, settings=None):
    """The checkpoint loaded on the CPU in the dtypes a GPU gets from these flags and settings (FP8 storage allowed, as
    on a GPU); afterwards no model is loaded, the CPU's own fp32 is back and no conditioning computed here is cached."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dict(FLAG_DEFAULTS, **(flags or {})).items():
            patch.setattr(shared.cmd_opts, name, value)
        for name, value in (settings or {}).items():
            patch.setitem(shared.opts.data, name, value)
        patch.setattr(devices, "refresh_precision", _precision_as_on_a_gpu)
        patch.setattr(devices, "supports_fp8_storage", lambda device: True)
        patch.setattr(devices, "fp8", False)
        processing.clear_cond_cache()
        try:
            with loaded_for_the_test(checkpoint) as model:
                yield model
        finally:
            processing.clear_cond_cache()
    devices.refresh_precision(shared.cmd_opts)


# ---- the jobs --------------------------------------------------------------------------------------------------------

INIT = Image.new("RGB", (64, 64), "white")
INIT.paste((220, 30, 30), (16, 16, 48, 48))
MASK = Image.new("L", (64, 64), 0)
MASK.paste(255, (0, 0, 32, 64))  # the left half is redrawn


def run(cls, model, **kwargs):
    params = dict(sd_model=model, prompt=PROMPT, negative_prompt="blue", steps=6, cfg_scale=7, width=64, height=64,
                  seed=11, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # img2img samples the VAE's latent distribution with torch's global generator
        return processing.process_images(cls(**params))


def txt2img(model, **kwargs):
    return run(processing.StableDiffusionProcessingTxt2Img, model, **kwargs)


def img2img(model, **kwargs):
    return run(processing.StableDiffusionProcessingImg2Img, model, init_images=[INIT], denoising_strength=0.6, **kwargs)


def inpaint(model):
    return img2img(model, mask=MASK, mask_blur=0, inpaint_full_res=False)


HIRES = dict(enable_hr=True, hr_scale=2, denoising_strength=0.5, hr_second_pass_steps=3)

DEMO_JOBS = {
    "txt2img": txt2img,
    "img2img": img2img,
    "inpainting": inpaint,
    "hires fix, latent": lambda model: txt2img(model, hr_upscaler="Latent", **HIRES),
    "hires fix, Lanczos": lambda model: txt2img(model, hr_upscaler="Lanczos", **HIRES),  # decoded, upscaled, encoded
    "LoRA": lambda model: txt2img(model, prompt=f"{LORA_PROMPT} <lora:demo-turquoise:1>", negative_prompt=""),
}


def pixels(image):
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


def difference(a, b):
    diff = np.abs(pixels(a) - pixels(b))
    return diff.mean(), diff.max()


def unet_weights(model):
    return {name: t.detach().clone() for name, t in model.model.diffusion_model.state_dict().items()}


def assert_dtypes(model, mode):
    unet = model.model.diffusion_model
    text_layers = [m for m in sd_models.text_encoders_of(model).modules() if isinstance(m, torch.nn.Linear)]
    found = (unet.input_blocks[0][0].weight.dtype, unet.time_embed[0].weight.dtype, text_layers[0].weight.dtype,
             model.first_stage_model.dtype)
    assert found == (mode.unet, mode.compute, mode.unet, mode.vae), "UNet, its timestep embedding, text encoder, VAE"


@contextlib.contextmanager
def recording_autocast(model):
    """[(autocast on?, its dtype)] as the UNet starts each call."""
    seen = []
    handle = model.model.diffusion_model.register_forward_pre_hook(
        lambda *_: seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))))
    try:
        yield seen
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def demo_lora():
    """The shipped demo LoRA listed as at start-up; no network stays active afterwards."""
    from modules import initialize
    from modules.lora import networks
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shared.cmd_opts, "lora_dir", os.path.join(ROOT, "models", "Lora"))
        initialize.load_extra_networks()
        assert "demo-turquoise" in networks.available_networks
        yield
        networks.load_networks([])
    networks.list_available_networks()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny 9-channel inpainting checkpoint, and tiny SDXL base and refiner checkpoints (the refiner listed)."""
    folder = tmp_path_factory.mktemp("half-precision")
    inpainting = factory.make_tiny_sd1_checkpoint(str(folder / "tiny-inpainting.safetensors"), in_channels=9)
    base, _ = factory.make_family_checkpoint(folder / "xl-base.safetensors", "sdxl")
    refiner, _ = factory.make_family_checkpoint(folder / "xl-refiner.safetensors", "sdxl_refiner", seed=1)
    refiner_info = sd_models.CheckpointInfo(str(refiner))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sd_models.checkpoints_list, refiner_info.title, refiner_info)
        for name in refiner_info.ids:
            patch.setitem(sd_models.checkpoint_aliases, name, refiner_info)
        yield dict(inpainting=str(inpainting), base=str(base), refiner=refiner_info)


def sdxl_with_refiner(model, refiner_info):
    """txt2img with the refiner taking over halfway; also [(refiner's UNet dtype, autocast on?)] at its steps."""
    refiner_steps = []

    def on_step(params):
        if shared.sd_model is not model:
            refiner_steps.append((shared.sd_model.model.diffusion_model.input_blocks[0][0].weight.dtype,
                                  torch.is_autocast_enabled("cpu")))
    script_callbacks.on_cfg_denoiser(on_step, name="test: refiner steps")
    try:
        res = txt2img(model, refiner_checkpoint=refiner_info.title, refiner_switch_at=0.5)
    finally:
        script_callbacks.remove_callbacks_for_function(on_step)
    assert "Refiner: xl-refiner" in res.infotexts[0]
    return res.images[0], refiner_steps


@pytest.fixture(scope="module")
def fp32_pictures(demo_lora, checkpoints):
    """Every job's picture in fp32 (--no-half: what a GPU computes in full precision), and the LoRA prompt without
    the LoRA."""
    modelloader.load_upscalers()
    with gpu_dtypes(DEMO, dict(no_half=True)) as model:
        pictures = {name: job(model).images[0] for name, job in DEMO_JOBS.items()}
        pictures["no LoRA"] = txt2img(model, prompt=LORA_PROMPT, negative_prompt="").images[0]
    with gpu_dtypes(checkpoints["inpainting"], dict(no_half=True)) as model:
        pictures["inpainting checkpoint"] = inpaint(model).images[0]
    with gpu_dtypes(checkpoints["base"], dict(no_half=True), {"sd_checkpoints_limit": 2}) as model:
        pictures["SDXL with refiner"], _ = sdxl_with_refiner(model, checkpoints["refiner"])
    return pictures


def far_from_fp32(mode, picture, reference):
    """'' when `picture` is within the mode's bounds of the fp32 picture, else the measured difference."""
    mean, worst = difference(picture, reference)
    limit_mean, limit_worst = mode.bounds
    return "" if mean <= limit_mean and worst <= limit_worst else f"mean {mean:.4f}, max {worst:.4f}"


# ---- every job in every mode -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MODES))
def test_the_demo_model_in_gpu_dtypes_draws_the_fp32_pictures(name, fp32_pictures):
    """txt2img, img2img, inpainting, hires fix (in latent space, and through a decoded upscale) and the demo LoRA
    with the model in the mode's dtypes, each within the mode's bounds of its fp32 picture; inpainting leaves the
    unmasked pixels alone; the LoRA, patched into half (or FP8) weights, is taken out bit for bit."""
    mode = MODES[name]
    with gpu_dtypes(DEMO, mode.flags, mode.settings) as model:
        assert_dtypes(model, mode)
        original = unet_weights(model)
        pictures, far = {}, {}
        with recording_autocast(model) as seen:
            for job_name, job in DEMO_JOBS.items():
                pictures[job_name] = job(model).images[0]
        txt2img(model, steps=1)  # without the tag: the LoRA's layers get their own weights back
        restored = unet_weights(model)
    expected_autocast = (True, mode.compute) if mode.autocast else False
    assert {(on, dtype) if on else False for on, dtype in seen} == {expected_autocast}
    for job_name, picture in pictures.items():
        far[job_name] = far_from_fp32(mode, picture, fp32_pictures[job_name])
    assert not any(far.values()), {k: v for k, v in far.items() if v}
    assert pictures["hires fix, latent"].size == pictures["hires fix, Lanczos"].size == (128, 128)
    untouched = pixels(pictures["inpainting"])[:, 40:]  # right of the mask (plus a margin): the original pixels
    assert np.abs(untouched - pixels(INIT)[:, 40:]).max() <= 1 / 255
    to_lora, _ = difference(pictures["LoRA"], fp32_pictures["LoRA"])
    lora_effect, _ = difference(fp32_pictures["LoRA"], fp32_pictures["no LoRA"])
    assert to_lora <= lora_effect / 3, f"{to_lora:.4f} from the fp32 LoRA picture; the LoRA moved it {lora_effect:.4f}"
    assert all(torch.equal(restored[key], value) for key, value in original.items()), "LoRA not taken out exactly"


@pytest.mark.parametrize("name", list(MODES))
def test_a_9_channel_inpainting_checkpoint_in_gpu_dtypes(name, checkpoints, fp32_pictures):
    """The inpainting UNet's masked-image conditioning (mask and encoded image, concatenated to the latent) in the
    mode's dtypes."""
    mode = MODES[name]
    with gpu_dtypes(checkpoints["inpainting"], mode.flags, mode.settings) as model:
        assert model.model.diffusion_model.input_blocks[0][0].weight.shape[1] == 9
        assert_dtypes(model, mode)
        picture = inpaint(model).images[0]
    assert not far_from_fp32(mode, picture, fp32_pictures["inpainting checkpoint"]), far_from_fp32(
        mode, picture, fp32_pictures["inpainting checkpoint"])
    assert np.abs(pixels(picture)[:, 40:] - pixels(INIT)[:, 40:]).max() <= 1 / 255


@pytest.mark.parametrize("name", list(MODES))
def test_sdxl_and_its_refiner_in_gpu_dtypes(name, checkpoints, fp32_pictures):
    """SDXL (two text encoders, the size vector) with its refiner taking over halfway, both in the mode's dtypes."""
    mode = MODES[name]
    with gpu_dtypes(checkpoints["base"], mode.flags, dict(mode.settings, sd_checkpoints_limit=2)) as model:
        assert_dtypes(model, mode)
        picture, refiner_steps = sdxl_with_refiner(model, checkpoints["refiner"])
    assert refiner_steps and set(refiner_steps) == {(mode.unet, mode.autocast)}
    far = far_from_fp32(mode, picture, fp32_pictures["SDXL with refiner"])
    assert not far, far


# ---- FP8 and LoRA ----------------------------------------------------------------------------------------------------

def test_cache_fp16_weight_makes_a_lora_change_fp8_weights_as_much_as_fp16_ones(demo_lora):
    """"Cache FP16 weight for LoRA": the LoRA is added to the weights as they were before FP8 (rounded once, not
    twice), so an FP8 layer moves as far as the fp16 layer does; without the cache, part of the change rounds away."""
    def lora_change(settings):
        with gpu_dtypes(DEMO, settings=settings) as model:
            block = model.model.diffusion_model.input_blocks[1][1].transformer_blocks[0]
            layers = [block.attn1.to_q, block.attn2.to_k, block.ff.net[2]]
            before = [layer.weight.float() for layer in layers]
            during = []
            model.model.diffusion_model.out.register_forward_pre_hook(
                lambda *_: during.append([layer.weight.float() for layer in layers]))
            res = txt2img(model, prompt=f"{LORA_PROMPT} <lora:demo-turquoise:1>", steps=1)
            return [(d - b).abs().mean().item() for d, b in zip(during[0], before)], res.infotexts[0]
    fp16, _ = lora_change({})
    cached, infotext = lora_change({"fp8_storage": "Enable", "cache_fp16_weight": True})
    uncached, _ = lora_change({"fp8_storage": "Enable"})
    assert "FP8 weight: Enable, Cache FP16 weight for LoRA: True" in infotext
    assert np.allclose(cached, fp16, rtol=0.02), (cached, fp16)
    assert min(c - u for c, u in zip(cached, uncached)) > 0, (cached, uncached)


# ---- the NaN check ---------------------------------------------------------------------------------------------------

def test_a_nan_unet_in_fp16_is_reported_with_a1111s_message(monkeypatch):
    monkeypatch.setattr(shared.cmd_opts, "disable_nan_check", False)
    with gpu_dtypes(DEMO) as model:
        with torch.no_grad():
            model.model.diffusion_model.out[2].bias.fill_(float("nan"))
        with pytest.raises(devices.NansException, match="A tensor with all NaNs was produced in Unet"):
            txt2img(model, steps=2)


def test_a_vae_that_overflows_fp16_is_retried_in_fp32(monkeypatch, capsys):
    """A1111's auto_vae_precision: NaNs from the half VAE -> the VAE converted to fp32 and the decode retried."""
    monkeypatch.setattr(shared.cmd_opts, "disable_nan_check", False)
    with gpu_dtypes(DEMO, settings={"auto_vae_precision": True}) as model:
        with torch.no_grad():  # activations past fp16's 65504 in the mid-block: inf -> NaN in half, fine in fp32
            model.first_stage_model.decoder.mid.block_1.conv1.weight.mul_(1e5)
        image = txt2img(model, steps=2).images[0]
        assert model.first_stage_model.dtype == torch.float32 and devices.dtype_vae == torch.float32
    assert "convert VAE into 32-bit float and retry" in capsys.readouterr().err
    assert 0.01 < pixels(image).std()


# ---- the tiled VAE, SDXL's size numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, worst", [("fp16", 8 / 255), ("bf16 setting", 0.25)])
def test_tiled_vae_decode_in_half_matches_the_whole_decode(name, worst):
    """The tiles' GroupNorm statistics (gathered in float32) give the whole decode's picture, to the half dtype's
    rounding: on average within 1/255."""
    from modules import sd_vae_tiled
    mode = MODES[name]
    with gpu_dtypes(DEMO, mode.flags, mode.settings) as model:
        vae = model.first_stage_model
        z = torch.randn(1, 4, 24, 24, generator=torch.Generator().manual_seed(0)).to(vae.dtype)
        with torch.no_grad():
            whole = vae.decode(z).float()
            tiled = sd_vae_tiled.decode_tiled(vae, z, tile=8).float()
    diff = (tiled - whole).abs() / 2
    assert tiled.dtype == whole.dtype and diff.mean() <= 1 / 255 and diff.max() <= worst, (diff.mean(), diff.max())


def test_sdxl_size_conditioning_keeps_its_numbers_exact_in_bf16(monkeypatch):
    """The size, crop and aesthetic score reach SDXL's embedder as asked: bfloat16 would make a 2056-high picture
    2048 high and a score of 6.1 6.09375."""
    from modules import sd_models_xl
    monkeypatch.setattr(devices, "refresh_precision", _precision_as_on_a_gpu)
    monkeypatch.setitem(shared.opts.data, "half_precision_type", "bfloat16")
    monkeypatch.setitem(shared.opts.data, "sdxl_refiner_high_aesthetic_score", 6.1)
    monkeypatch.setitem(shared.opts.data, "sdxl_crop_top", 301)
    try:
        devices.refresh_precision(shared.cmd_opts)
        assert devices.dtype == torch.bfloat16
        inputs = sd_models_xl.conditioning_inputs(["a"], width=1032, height=2056)
    finally:
        monkeypatch.undo()
        devices.refresh_precision(shared.cmd_opts)
    assert inputs["original_size_as_tuple"].tolist() == inputs["target_size_as_tuple"].tolist() == [[2056, 1032]]
    assert inputs["crop_coords_top_left"].tolist() == [[301, 0]]
    assert inputs["aesthetic_score"].tolist() == [[pytest.approx(6.1)]]


def test_upcast_attention_computes_every_attention_in_fp32_and_draws_the_fp32_picture(fp32_pictures, monkeypatch):
    # A1111's "Upcast cross attention layer to float32": the UNet's and the VAE's attention (not the text encoder's)
    # in fp32 on a half model
    from ldm.modules import attention
    seen, inside = [], []
    fused = attention.F.scaled_dot_product_attention

    def recording(q, k, v, **kwargs):
        if inside:
            seen.append((q.dtype, k.dtype, v.dtype))
        return fused(q, k, v, **kwargs)

    def draw(model):
        parts = (model.model.diffusion_model, model.first_stage_model.decoder)
        hooks = [part.register_forward_pre_hook(lambda *_: inside.append(True)) for part in parts]
        hooks += [part.register_forward_hook(lambda *_: None if inside.pop() else None) for part in parts]
        try:
            return txt2img(model).images[0]
        finally:
            for hook in hooks:
                hook.remove()

    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", recording)
    with gpu_dtypes(DEMO, settings={"upcast_attn": True}) as model:
        upcast = draw(model)
    assert seen and set(seen) == {(f32, f32, f32)}, set(seen)
    assert not far_from_fp32(MODES["fp16"], upcast, fp32_pictures["txt2img"])
    seen.clear()
    with gpu_dtypes(DEMO) as model:
        draw(model)
    assert set(seen) == {(f16, f16, f16)}  # off (the default): the attention stays in half
