"""Precision flags with A1111's meaning, FP8 weight storage, and the NaN check's messages (CPU-checkable parts; the
CUDA runs are in test_cuda_paths.py)."""
import types

import pytest
import torch

from modules import devices, fp8_weights, shared
from tests import checkpoint_factory as factory


def flags(**kwargs):
    values = dict(no_half=False, no_half_vae=False, precision="autocast", upcast_sampling=False, bf16=False)
    values.update(kwargs)
    return types.SimpleNamespace(**values)


def test_the_cpu_keeps_fp32_whatever_the_flags():
    for f in (flags(), flags(precision="half"), flags(upcast_sampling=True)):
        p = devices.choose_precision("cpu", f, want_bf16=True, bf16_supported=True)
        assert (p.dtype_unet, p.dtype_vae, p.dtype_inference) == (torch.float32,) * 3
        assert not p.unet_needs_upcast and not p.force_fp16


@pytest.mark.parametrize("kwargs, unet, vae, inference", [
    (dict(), torch.float16, torch.float16, torch.float16),
    (dict(no_half=True), torch.float32, torch.float32, torch.float32),
    (dict(no_half_vae=True), torch.float16, torch.float32, torch.float16),
    (dict(precision="full"), torch.float16, torch.float16, torch.float32),
])
def test_gpu_dtypes_follow_the_a1111_flags(kwargs, unet, vae, inference):
    p = devices.choose_precision("cuda", flags(**kwargs))
    assert (p.dtype_unet, p.dtype_vae, p.dtype_inference) == (unet, vae, inference)


def test_bf16_only_where_the_gpu_computes_in_it():
    assert devices.choose_precision("cuda", flags(), want_bf16=True, bf16_supported=True).dtype_unet == torch.bfloat16
    assert devices.choose_precision("cuda", flags(), want_bf16=True, bf16_supported=False).dtype_unet == torch.float16
    assert devices.choose_precision("cuda", flags(no_half_vae=True), True, True).dtype_vae == torch.float32


def test_upcast_sampling_keeps_half_weights_and_samples_in_fp32():
    p = devices.choose_precision("cuda", flags(upcast_sampling=True))
    assert p.dtype_unet == torch.float16 and p.unet_needs_upcast
    assert not devices.choose_precision("cuda", flags(upcast_sampling=True, no_half=True)).unet_needs_upcast


def test_precision_half_is_fp16_without_autocast_and_conflicts_with_no_half():
    p = devices.choose_precision("cuda", flags(precision="half"))
    assert p.force_fp16 and p.dtype_inference == torch.float16
    with pytest.raises(SystemExit, match="conflict with --precision half"):
        devices.choose_precision("cuda", flags(precision="half", no_half_vae=True))


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_autocast_only_for_a_half_model_on_a_gpu(monkeypatch):
    assert isinstance(devices.autocast(), type(devices.contextlib.nullcontext()))  # this CPU run
    monkeypatch.setattr(devices, "device", torch.device("cuda"))
    saved = devices.Precision(devices.dtype, devices.dtype_unet, devices.dtype_vae, devices.dtype_inference,
                              devices.unet_needs_upcast, devices.force_fp16)
    try:
        devices.set_precision(devices.choose_precision("cuda", flags()))
        assert isinstance(devices.autocast(), torch.autocast)
        for f in (flags(precision="full"), flags(precision="half"), flags(no_half=True)):
            devices.set_precision(devices.choose_precision("cuda", f))
            assert not isinstance(devices.autocast(), torch.autocast)
    finally:
        devices.set_precision(saved)


def test_the_half_precision_setting_is_read_when_a_model_loads(monkeypatch):
    monkeypatch.setitem(shared.opts.data, "half_precision_type", "bfloat16")
    assert devices.wants_bf16(flags())
    monkeypatch.setitem(shared.opts.data, "half_precision_type", "float16")
    assert not devices.wants_bf16(flags()) and devices.wants_bf16(flags(bf16=True))
    devices.refresh_precision(flags(bf16=True))
    assert devices.dtype_unet == torch.float32  # this CPU run: fp32 whatever is asked


# ---- the NaN check -------------------------------------------------------------------------------------------------

def test_all_nans_raise_a1111s_message_and_a_partly_nan_tensor_does_not(monkeypatch):
    monkeypatch.setattr(shared.cmd_opts, "disable_nan_check", False)
    monkeypatch.setattr(shared.cmd_opts, "no_half", False)
    monkeypatch.setattr(shared.cmd_opts, "no_half_vae", False)
    partly = torch.zeros(1, 4, 2, 2)
    partly[0, 0, 0, 0] = float("nan")
    devices.test_for_nans(partly, "unet")
    nans = torch.full((1, 4, 2, 2), float("nan"))
    with pytest.raises(devices.NansException) as e:
        devices.test_for_nans(nans, "vae")
    assert str(e.value) == ("A tensor with all NaNs was produced in VAE. This could be because there's not enough "
                            "precision to represent the picture. Try adding --no-half-vae commandline argument to fix "
                            "this. Use --disable-nan-check commandline argument to disable this check.")
    monkeypatch.setattr(shared.cmd_opts, "no_half_vae", True)
    with pytest.raises(devices.NansException, match=r"^A tensor with all NaNs was produced in VAE\. Use --disable"):
        devices.test_for_nans(nans, "vae")
    with pytest.raises(devices.NansException, match=r"in Unet\. This could be either because .*--no-half commandline"):
        devices.test_for_nans(nans, "unet")
    monkeypatch.setattr(shared.cmd_opts, "disable_nan_check", True)
    devices.test_for_nans(nans, "unet")


# ---- FP8 weight storage --------------------------------------------------------------------------------------------

def _tiny_unet_and_inputs():
    model = factory.build_random_model(seed=3)
    unet = model.model.diffusion_model
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=g)
    context = torch.randn(2, 77, factory.TINY_UNET["context_dim"], generator=g)
    return unet, x, torch.tensor([10, 700]), context


def test_fp8_storage_computes_with_the_rounded_weights_and_keeps_the_timestep_embedding():
    unet, x, t, context = _tiny_unet_and_inputs()
    with torch.no_grad():
        # the reference: the same weights rounded through fp8, computed in fp32 as plain layers
        for name, module in unet.named_modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and not name.startswith("time_embed"):
                module.weight.copy_(module.weight.to(fp8_weights.FP8_DTYPE).float())
        expected = unet(x, t, context=context)
        converted = fp8_weights.store_in_fp8(unet)
        out = unet(x, t, context=context)
    assert converted > 10
    assert unet.input_blocks[0][0].weight.dtype == fp8_weights.FP8_DTYPE
    assert unet.time_embed[0].weight.dtype == torch.float32
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_fp8_is_not_used_on_the_cpu_and_says_why(monkeypatch, capsys):
    monkeypatch.setitem(shared.opts.data, "fp8_storage", "Enable")
    monkeypatch.setattr(devices, "fp8", False)
    model = types.SimpleNamespace(is_sdxl=False)
    assert not fp8_weights.wanted(model)
    assert "CUDA GPUs only" in capsys.readouterr().err
    monkeypatch.setitem(shared.opts.data, "fp8_storage", "Enable for SDXL")
    assert not fp8_weights.wanted(model)


def test_fp8_mode_is_written_to_the_infotext(monkeypatch, tiny_model):
    from modules import processing
    monkeypatch.setitem(shared.opts.data, "fp8_storage", "Enable")
    p = processing.StableDiffusionProcessingTxt2Img(sd_model=tiny_model, prompt="x", steps=1, width=64, height=64,
                                                    seed=1, sampler_name="Euler", do_not_save_samples=True,
                                                    do_not_save_grid=True)
    p.setup_prompts()
    p.all_seeds, p.all_subseeds = [1], [1]
    assert "FP8 weight" not in processing.create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds)
    monkeypatch.setattr(devices, "fp8", True)
    text = processing.create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds)
    assert "FP8 weight: Enable, Cache FP16 weight for LoRA: False" in text
