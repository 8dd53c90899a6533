"""The engine on an NVIDIA GPU: every generation path (SDXL with its refiner, LoRA), precision flag, memory mode, the
NaN check, compile, tiled VAE and the GPU noise. Marked `cuda`: skipped without CUDA; benchmarks/gpu_check.sh runs them on a GPU machine.

Pictures are compared with the same job in fp32 on the same GPU (same CUDA noise), so a broken half-precision path
shows as a difference, not as a different seed.
"""
import contextlib
import os

import numpy as np
import pytest
import torch
from PIL import Image

from modules import devices, processing, rng, script_callbacks, sd_models, shared
from tests import checkpoint_factory as factory
from tests.model_session import loaded_for_the_test

pytestmark = pytest.mark.cuda

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")
PROMPT = "a large red circle in the centre on a white background"
FLAG_DEFAULTS = dict(no_half=False, no_half_vae=False, precision="autocast", upcast_sampling=False, bf16=False,
                     medvram=False, lowvram=False, medvram_sdxl=False, compile=False, opt_channelslast=False,
                     use_cpu=[])


@contextlib.contextmanager
def engine(checkpoint=DEMO, **flags):
    """The engine reconfigured with these flags (others at their defaults) and the checkpoint (default: the demo model)
    loaded; restored after, with no model kept loaded (the refiner's included)."""
    saved = {name: getattr(shared.cmd_opts, name) for name in FLAG_DEFAULTS}
    for name, value in dict(FLAG_DEFAULTS, **flags).items():
        setattr(shared.cmd_opts, name, value)
    devices.configure(shared.cmd_opts)
    shared.device = devices.device
    try:
        with loaded_for_the_test(checkpoint) as model:
            yield model
    finally:
        for name, value in saved.items():
            setattr(shared.cmd_opts, name, value)
        devices.configure(shared.cmd_opts)
        shared.device = devices.device
        torch.cuda.empty_cache()


def txt2img(model, **kwargs):
    params = dict(sd_model=model, prompt=PROMPT, negative_prompt="blue", steps=12, cfg_scale=7, width=64, height=64,
                  seed=11, sampler_name="Euler a", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    return processing.process_images(processing.StableDiffusionProcessingTxt2Img(**params))


def pixels(image):
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


def close(a, b, mean=0.02, worst=0.25):
    """Two renderings of the same job agree: on average within `mean`, nowhere further apart than `worst`."""
    diff = np.abs(pixels(a) - pixels(b))
    return diff.mean() <= mean and diff.max() <= worst, f"mean {diff.mean():.4f}, max {diff.max():.4f}"


@pytest.fixture(scope="module")
def fp32_picture():
    with engine(no_half=True) as model:
        return txt2img(model).images[0]


@pytest.fixture(autouse=True)
def gpu_noise(monkeypatch):
    monkeypatch.setitem(shared.opts.data, "randn_source", "GPU")


# ---- generation paths (fp16, the default on a GPU) -----------------------------------------------------------------

def test_txt2img_in_fp16_draws_the_fp32_picture(fp32_picture):
    with engine() as model:
        assert model.model.diffusion_model.input_blocks[0][0].weight.dtype == torch.float16
        assert model.device.type == "cuda" and devices.dtype_vae == torch.float16
        ok, how = close(txt2img(model).images[0], fp32_picture)
    assert ok, how


def test_img2img_and_inpainting_on_the_gpu():
    init = Image.new("RGB", (64, 64), "white")
    init.paste((220, 30, 30), (16, 16, 48, 48))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    results = {}
    for flags in (dict(no_half=True), dict()):
        with engine(**flags) as model:
            common = dict(sd_model=model, prompt=PROMPT, steps=10, cfg_scale=7, width=64, height=64, seed=3,
                          sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True, denoising_strength=0.6)
            img2img = processing.process_images(processing.StableDiffusionProcessingImg2Img(init_images=[init], **common))
            inpaint = processing.process_images(processing.StableDiffusionProcessingImg2Img(
                init_images=[init], mask=mask, mask_blur=0, inpaint_full_res=False, **common))
            results[bool(flags)] = (img2img.images[0], inpaint.images[0])
    for fp32, fp16 in zip(results[True], results[False]):
        ok, how = close(fp16, fp32)
        assert ok, how
    untouched = pixels(results[False][1])[:, 40:]  # right of the mask (plus a margin): the original pixels
    assert np.abs(untouched - pixels(init)[:, 40:]).max() <= 1 / 255


def test_hires_fix_on_the_gpu():
    with engine() as model:
        res = txt2img(model, enable_hr=True, hr_scale=2, hr_upscaler="Latent", denoising_strength=0.5, hr_second_pass_steps=6)
    image = res.images[0]
    assert image.size == (128, 128)
    assert 0.05 < pixels(image).std()  # a picture, not a flat or black square


# ---- LoRA ----------------------------------------------------------------------------------------------------------

TURQUOISE = "a large turquoise circle in the centre on a white background"


@pytest.fixture
def demo_lora(monkeypatch):
    """The shipped demo LoRA (models/Lora of the checkout) listed as at start-up; its tag. No network stays active."""
    from modules import initialize
    from modules.lora import networks
    monkeypatch.setattr(shared.cmd_opts, "lora_dir", os.path.join(ROOT, "models", "Lora"))
    initialize.load_extra_networks()
    assert "demo-turquoise" in networks.available_networks
    yield "<lora:demo-turquoise:1>"
    networks.load_networks([])


def unet_weights(model):
    return {name: t.detach().to("cpu", copy=True) for name, t in model.model.diffusion_model.state_dict().items()}


def test_lora_on_half_weights_on_the_gpu_in_every_memory_mode_and_taken_off_exactly(demo_lora):
    """The LoRA patched into the fp16 UNet and text encoder on the GPU (resting in RAM under --medvram/--lowvram)
    draws the fp32 LoRA picture, the turquoise it taught the demo model; without the tag the weights are the
    checkpoint's again, bit for bit."""
    from demo_model import judge
    from demo_model.train_lora import NEW_COLOUR, PALETTE
    prompt = f"{TURQUOISE} {demo_lora}"
    with engine(no_half=True) as model:
        reference = txt2img(model, prompt=prompt).images[0]
    assert judge.judge(reference, palette=PALETTE).main.colour == NEW_COLOUR
    for name, flags in (("normal", {}), ("--medvram", dict(medvram=True)), ("--lowvram", dict(lowvram=True))):
        with engine(**flags) as model:
            original = unet_weights(model)
            picture = txt2img(model, prompt=prompt).images[0]
            txt2img(model, prompt=TURQUOISE, steps=1)  # the tag gone: the layers get their own weights back
            changed = [key for key, value in unet_weights(model).items() if not torch.equal(value, original[key])]
        ok, how = close(picture, reference)
        assert ok, f"{name}: {how}"
        assert judge.judge(picture, palette=PALETTE).main.colour == NEW_COLOUR, name
        assert not changed, f"{name}: {changed[:3]} not restored"


# ---- SDXL and its refiner ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sdxl_checkpoints(tmp_path_factory):
    """Tiny SDXL base and refiner checkpoints (random weights in the real key layout), the refiner registered."""
    folder = tmp_path_factory.mktemp("sdxl")
    base, _ = factory.make_family_checkpoint(folder / "xl-base.safetensors", "sdxl")
    refiner, _ = factory.make_family_checkpoint(folder / "xl-refiner.safetensors", "sdxl_refiner", seed=1)
    refiner_info = sd_models.CheckpointInfo(str(refiner))
    refiner_info.register()
    return str(base), refiner_info


def test_sdxl_and_its_refiner_in_fp16_and_in_every_memory_mode(sdxl_checkpoints, monkeypatch):
    """SDXL with its refiner taking over halfway: in fp16 the fp32 picture; under --medvram-sdxl and --lowvram the
    same picture with less VRAM in use (as the base UNet's middle block starts); the refiner runs in the same mode
    while the base rests in RAM (kept loaded: sd_checkpoints_limit 2), and the base is the model in use afterwards."""
    base, refiner_info = sdxl_checkpoints
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 2)
    pictures, in_use = {}, {}
    for name, flags in (("fp32", dict(no_half=True)), ("normal", {}), ("--medvram-sdxl", dict(medvram_sdxl=True)),
                        ("--lowvram", dict(lowvram=True))):
        with engine(base, **flags) as model:
            seen, refiner_steps = [], []
            model.model.diffusion_model.middle_block.register_forward_pre_hook(
                lambda *_: seen.append(torch.cuda.memory_allocated()))

            def on_step(params, model=model):
                if shared.sd_model is not model:  # the refiner's steps: where the base and the refiner are
                    refiner_steps.append((model.model.diffusion_model.out[2].weight.device.type, shared.sd_model.lowvram,
                                          shared.sd_model.sd_checkpoint_info.filename))
            script_callbacks.on_cfg_denoiser(on_step, name="test: refiner steps")
            try:
                result = txt2img(model, steps=8, sampler_name="Euler", refiner_checkpoint=refiner_info.title,
                                 refiner_switch_at=0.5)
            finally:
                script_callbacks.remove_callbacks_for_function(on_step)
            assert shared.sd_model is model and model.device.type == "cuda", name
            assert model.lowvram == (name in ("--medvram-sdxl", "--lowvram")), name
        assert "Refiner: xl-refiner" in result.infotexts[0], name
        assert 0 < len(refiner_steps) < 8 and set(refiner_steps) == {("cpu", model.lowvram, refiner_info.filename)}, \
            f"{name}: {refiner_steps}"
        pictures[name], in_use[name] = result.images[0], max(seen)
    ok, how = close(pictures["normal"], pictures["fp32"])
    assert ok, f"fp16: {how}"
    for name in ("--medvram-sdxl", "--lowvram"):
        ok, how = close(pictures[name], pictures["normal"], mean=1 / 255, worst=4 / 255)
        assert ok, f"{name}: {how}"
    assert in_use["--lowvram"] < in_use["--medvram-sdxl"] < in_use["normal"], in_use


def test_medvram_sdxl_leaves_an_sd1_model_whole_on_the_gpu():
    with engine(medvram_sdxl=True) as model:
        assert not model.lowvram and shared.parallel_processing_allowed
        assert {p.device.type for p in model.parameters()} == {"cuda"}


# ---- precision -----------------------------------------------------------------------------------------------------

def test_no_half_vae_keeps_the_vae_in_fp32(fp32_picture):
    with engine(no_half_vae=True) as model:
        assert model.first_stage_model.dtype == torch.float32
        assert model.model.diffusion_model.input_blocks[0][0].weight.dtype == torch.float16
        ok, how = close(txt2img(model).images[0], fp32_picture)
    assert ok, how


@pytest.mark.parametrize("flags", [dict(precision="full"), dict(upcast_sampling=True), dict(precision="half")])
def test_precision_flags_draw_the_fp32_picture(flags, fp32_picture):
    with engine(**flags) as model:
        ok, how = close(txt2img(model).images[0], fp32_picture)
    assert ok, how


def test_bf16_where_the_gpu_computes_in_it(fp32_picture):
    if not devices.supports_bf16(torch.device("cuda")):
        pytest.skip("this GPU has no bfloat16 math")
    with engine(bf16=True) as model:
        assert model.model.diffusion_model.input_blocks[0][0].weight.dtype == torch.bfloat16
        ok, how = close(txt2img(model).images[0], fp32_picture, mean=0.04, worst=0.4)
    assert ok, how


def test_fp8_weight_storage_halves_the_unet_and_still_draws(monkeypatch, fp32_picture):
    monkeypatch.setitem(shared.opts.data, "fp8_storage", "Enable")
    with engine() as model:
        unet = model.model.diffusion_model
        assert devices.fp8 and unet.input_blocks[0][0].weight.dtype == torch.float8_e4m3fn
        res = txt2img(model)
        assert "FP8 weight: Enable" in res.infotexts[0]
        ok, how = close(res.images[0], fp32_picture, mean=0.06, worst=0.6)
    monkeypatch.setattr(devices, "fp8", False)
    assert ok, how


def test_a_nan_unet_is_reported_with_a1111s_message():
    with engine() as model:
        first = model.model.diffusion_model.out[2]
        with torch.no_grad():
            first.bias.fill_(float("nan"))
        with pytest.raises(devices.NansException, match="A tensor with all NaNs was produced in Unet"):
            txt2img(model, steps=2)


def test_a_vae_that_overflows_fp16_is_retried_in_fp32(monkeypatch, capsys):
    """A1111's auto_vae_precision: NaNs from the half VAE -> the VAE converted to fp32 and the decode retried."""
    monkeypatch.setitem(shared.opts.data, "auto_vae_precision", True)
    with engine() as model:
        decoder = model.first_stage_model.decoder
        with torch.no_grad():  # activations past fp16's 65504 in the mid-block: inf -> NaN in half, fine in fp32
            decoder.mid.block_1.conv1.weight.mul_(1e5)
        image = txt2img(model, steps=4).images[0]
        assert model.first_stage_model.dtype == torch.float32
    assert "convert VAE into 32-bit float and retry" in capsys.readouterr().err
    assert not np.isnan(pixels(image)).any()


# ---- memory modes --------------------------------------------------------------------------------------------------

def test_memory_modes_draw_the_same_picture_with_less_vram():
    """VRAM in use as the UNet's middle block starts (the same activations in every mode, so the difference is the
    weights each mode keeps on the GPU): all of them, the UNet's, one block's."""
    pictures, in_use = {}, {}
    for name, flags in (("normal", {}), ("medvram", dict(medvram=True)), ("lowvram", dict(lowvram=True))):
        with engine(**flags) as model:
            seen = []
            model.model.diffusion_model.middle_block.register_forward_pre_hook(
                lambda *_: seen.append(torch.cuda.memory_allocated()))
            pictures[name] = txt2img(model).images[0]
            in_use[name] = max(seen)
            if name != "normal":
                assert model.lowvram and model.device.type == "cuda"
    for name in ("medvram", "lowvram"):
        ok, how = close(pictures[name], pictures["normal"], mean=1 / 255, worst=4 / 255)
        assert ok, f"{name}: {how}"
    assert in_use["lowvram"] < in_use["medvram"] < in_use["normal"], in_use


def test_automatic_placement_when_the_model_does_not_fit(monkeypatch, capsys):
    from modules import memory_placement
    with engine() as model:
        normal = txt2img(model).images[0]
        whole = memory_placement.tensor_bytes(model)
    # pretend the card has room for half the weights beside the activation reserve
    monkeypatch.setattr(memory_placement, "free_vram", lambda device: whole // 2 + memory_placement.activation_reserve(model))
    with engine() as model:
        assert model.lowvram
        assert "does not fit in free VRAM" in capsys.readouterr().out
        ok, how = close(txt2img(model).images[0], normal, mean=1 / 255, worst=4 / 255)
    assert ok, how


@pytest.mark.parametrize("flags, mean, worst", [(dict(no_half=True), 1 / 255, 1 / 255), ({}, 1 / 255, 8 / 255)],
                         ids=["fp32", "fp16"])
def test_tiled_vae_decode_on_the_gpu_matches_the_whole_decode(flags, mean, worst):
    """In fp32 the tiles give the whole decode's picture to 1/255 everywhere; in fp16 to its rounding (the CPU
    rehearsal in fp16 measured a mean of 0.0001 and single pixels up to 0.018 apart)."""
    from modules import sd_vae_tiled
    with engine(**flags) as model:
        vae = model.first_stage_model
        z = torch.randn(1, 4, 96, 96, device="cuda", generator=torch.Generator("cuda").manual_seed(0)).to(devices.dtype_vae)
        with torch.no_grad():
            whole = vae.decode(z).float()
            tiled = sd_vae_tiled.decode_tiled(vae, z, tile=32).float()
    diff = (tiled - whole).abs() / 2
    assert diff.mean() <= mean and diff.max() <= worst, (diff.mean().item(), diff.max().item())


# ---- where tensors live: every sampler, schedule, kept model ------------------------------------------------------

def test_every_sampler_and_schedule_type_runs_on_the_gpu():
    """Every sampler in txt2img and in inpainting (the timestep samplers blend the mask before each step, the others
    after), and every schedule type, finishes on the GPU with a picture: no schedule, mask, noise or cached tensor
    made on the CPU meets a GPU one. All are tried, then the failures reported together."""
    from modules import sd_samplers, sd_schedulers
    init = Image.new("RGB", (64, 64), "white")
    init.paste((220, 30, 30), (16, 16, 48, 48))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    failures = {}

    def attempt(label, job):
        try:
            image = job().images[0]
            if pixels(image).std() < 0.01:
                failures[label] = "a flat picture"
        except Exception as e:  # noqa: BLE001 (every failure is reported, the others still run)
            failures[label] = f"{type(e).__name__}: {e}"

    with engine() as model:
        for sampler in sd_samplers.all_samplers:
            name = sampler.name
            attempt(f"{name} txt2img", lambda name=name: txt2img(model, sampler_name=name, steps=4))
            attempt(f"{name} inpainting", lambda name=name: processing.process_images(processing.StableDiffusionProcessingImg2Img(
                sd_model=model, prompt=PROMPT, steps=4, width=64, height=64, seed=3, sampler_name=name,
                init_images=[init], mask=mask, mask_blur=0, denoising_strength=0.75, do_not_save_samples=True,
                do_not_save_grid=True)))
        for scheduler in sd_schedulers.schedulers[1:]:
            attempt(f"Euler, {scheduler.label}", lambda label=scheduler.label: txt2img(model, sampler_name="Euler", scheduler=label, steps=4))
    assert not failures, failures


def test_the_cheap_preview_of_a_gpu_latent_is_made_on_the_gpu():
    from modules import latent_codec
    latent = torch.randn(1, 4, 8, 8, device="cuda", dtype=torch.float16)
    preview = latent_codec.samples_to_images_tensor(latent, latent_codec.approximation_indexes["Approx cheap"])
    assert preview.device.type == "cuda" and preview.shape == (1, 3, 8, 8)


def test_a_kept_checkpoint_back_from_ram_draws_its_picture_again(tmp_path, monkeypatch):
    """sd_checkpoints_limit 2: the demo model rests in RAM (schedule buffers included) while another is in use, and
    back on the GPU draws the picture it drew before: everything it holds came back with it."""
    other = factory.make_tiny_sd1_checkpoint(str(tmp_path / "other.safetensors"), seed=1)
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 2)
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_keep_in_cpu", True)
    with engine() as model:
        first = txt2img(model).images[0]
        second = sd_models.reload_model_weights(info=sd_models.CheckpointInfo(other))
        assert second is not model
        assert next(model.model.parameters()).device.type == "cpu" and model.alphas_cumprod.device.type == "cpu"
        txt2img(second, steps=2)
        back = sd_models.reload_model_weights(info=sd_models.CheckpointInfo(DEMO))
        assert back is model and model.alphas_cumprod.device.type == "cuda"
        again = txt2img(model).images[0]
    ok, how = close(again, first, mean=1 / 255, worst=4 / 255)
    assert ok, how


# ---- the GPU noise -------------------------------------------------------------------------------------------------

def test_cuda_noise_is_the_nv_reference_noise():
    """torch's CUDA generator gives A1111's NV vectors (modules.rng_philox reproduces them on any machine)."""
    from modules import rng_philox
    g = torch.Generator("cuda").manual_seed(0)
    expected = [[-0.9246624, -0.42534396, -2.6438458, 0.14518388],
                [-0.12086651, -0.5797257, -0.6228513, -0.32838714],
                [-1.074542, -0.3631441, -1.6710504, 2.265505]]
    np.testing.assert_allclose(torch.randn((3, 4), generator=g, device="cuda").cpu().numpy(), expected, atol=1e-6)
    g = torch.Generator("cuda").manual_seed(1234)
    np.testing.assert_allclose(torch.randn((1, 4, 8, 8), generator=g, device="cuda").cpu().numpy(),
                               rng_philox.Generator(1234).randn((1, 4, 8, 8)), atol=1e-5)


def test_gpu_and_nv_sources_give_the_same_image_noise(monkeypatch):
    shape = (4, 8, 8)
    monkeypatch.setitem(shared.opts.data, "randn_source", "GPU")
    gpu = rng.ImageRNG(shape, [77, 78]).next()
    assert gpu.device.type == "cuda"
    monkeypatch.setitem(shared.opts.data, "randn_source", "NV")
    nv = rng.ImageRNG(shape, [77, 78]).next()
    torch.testing.assert_close(gpu.float().cpu(), nv.float().cpu(), rtol=0, atol=1e-5)


# ---- compile (last: the slowest; a time limit cuts it before the others) --------------------------------------------

def test_compile_draws_the_eager_picture_and_compiles_once_per_size():
    with engine() as model:
        eager = txt2img(model).images[0]
    with engine(compile=True) as model:
        import torch._dynamo
        torch._dynamo.reset()
        compiled = txt2img(model).images[0]
        assert not model.model.diffusion_model.forward.failed, "the UNet fell back to eager"
        counters = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        txt2img(model, seed=12)
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == counters  # same size: no new compile
    ok, how = close(compiled, eager, mean=2 / 255, worst=0.1)
    assert ok, how
