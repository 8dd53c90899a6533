"""Which device and dtypes the model runs on (A1111: modules.devices)."""
import contextlib
import sys
from dataclasses import dataclass

import torch

cpu = torch.device("cpu")


def has_mps() -> bool:
    return sys.platform == "darwin" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def get_cuda_device_string():
    from modules import shared
    if shared.cmd_opts.device_id is not None:
        return f"cuda:{shared.cmd_opts.device_id}"
    return "cuda"


def get_optimal_device_name():
    if torch.cuda.is_available():
        return get_cuda_device_string()
    if has_mps():
        return "mps"
    return "cpu"


def get_optimal_device():
    return torch.device(get_optimal_device_name())


def get_device_for(task):
    from modules import shared
    use_cpu = shared.cmd_opts.use_cpu
    if task in use_cpu or "all" in use_cpu:
        return cpu
    return get_optimal_device()


def torch_gc():
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()


def torch_npu_set_device():
    pass


def enable_tf32():
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


device = cpu
device_interrogate = cpu
device_gfpgan = cpu
device_esrgan = cpu
device_codeformer = cpu
dtype = torch.float32
dtype_vae = torch.float32
dtype_unet = torch.float32
dtype_inference = torch.float32
unet_needs_upcast = False
force_fp16 = False  # --precision half: no autocast; the model and its inputs are fp16 throughout
fp8 = False         # the loaded model keeps its Linear/Conv weights in float8 (the "FP8 weight" setting)


@dataclass(frozen=True)
class Precision:
    """The dtypes one device runs the model in (A1111's module globals of the same names)."""
    dtype: torch.dtype
    dtype_unet: torch.dtype
    dtype_vae: torch.dtype
    dtype_inference: torch.dtype
    unet_needs_upcast: bool
    force_fp16: bool


def supports_bf16(dev) -> bool:
    """bfloat16 math in hardware: CUDA compute capability 8.0 (Ampere) and later."""
    return dev.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)


def supports_fp8_storage(dev) -> bool:
    """float8 weight storage (math stays fp16/bf16): any CUDA GPU, with a torch that has the float8 dtypes."""
    return dev.type == "cuda" and hasattr(torch, "float8_e4m3fn")


def choose_precision(device_type, cmd_opts, want_bf16=False, bf16_supported=False) -> Precision:
    """The dtypes for a device from the flags, as A1111: the CPU always fp32; a GPU fp16 (bf16 when asked for and
    supported), --no-half all fp32, --no-half-vae the VAE fp32, --precision full fp32 activations, --precision half
    fp16 without autocast, --upcast-sampling fp16 weights with the sampler in fp32."""
    fp32 = torch.float32
    if device_type == "cpu":
        return Precision(fp32, fp32, fp32, fp32, False, False)
    half = torch.bfloat16 if want_bf16 and bf16_supported else torch.float16
    if cmd_opts.precision == "half":
        if cmd_opts.no_half or cmd_opts.no_half_vae:
            raise SystemExit("--no-half and --no-half-vae conflict with --precision half")
        return Precision(torch.float16, torch.float16, torch.float16, torch.float16, False, True)
    unet = fp32 if cmd_opts.no_half else half
    vae = fp32 if cmd_opts.no_half or cmd_opts.no_half_vae else half
    inference = fp32 if cmd_opts.precision == "full" else unet
    upcast = bool(cmd_opts.upcast_sampling) and unet != fp32
    return Precision(unet, unet, vae, inference, upcast, False)


def wants_bf16(cmd_opts) -> bool:
    """--bf16, or the "Half-precision type" setting (read when a model loads)."""
    from modules import shared
    return cmd_opts.bf16 or shared.opts.half_precision_type == "bfloat16"


def set_precision(precision: Precision):
    global dtype, dtype_vae, dtype_unet, dtype_inference, unet_needs_upcast, force_fp16
    dtype, dtype_unet, dtype_vae = precision.dtype, precision.dtype_unet, precision.dtype_vae
    dtype_inference, unet_needs_upcast, force_fp16 = precision.dtype_inference, precision.unet_needs_upcast, precision.force_fp16


def configure(cmd_opts):
    """Pick the devices from the flags, then the dtypes (choose_precision)."""
    global device, device_interrogate, device_gfpgan, device_esrgan, device_codeformer
    device = get_device_for("sd")
    device_interrogate = get_device_for("interrogate")
    device_gfpgan = get_device_for("gfpgan")
    device_esrgan = get_device_for("esrgan")
    device_codeformer = get_device_for("codeformer")
    refresh_precision(cmd_opts)
    if device.type == "cuda":
        enable_tf32()


def refresh_precision(cmd_opts):
    """Re-read the precision choice (the bf16 setting may have changed since start-up); called before a model loads."""
    want_bf16 = device.type != "cpu" and wants_bf16(cmd_opts)
    bf16_ok = supports_bf16(device) if want_bf16 else False
    if want_bf16 and not bf16_ok:
        print(f"bfloat16 was asked for, but {device} cannot compute in it: using float16", file=sys.stderr)
    set_precision(choose_precision(device.type, cmd_opts, want_bf16, bf16_ok))


def cond_cast_unet(tensor):
    return tensor.to(dtype_unet) if unet_needs_upcast else tensor


def cond_cast_float(tensor):
    return tensor.float() if unet_needs_upcast else tensor


def autocast(disable=False):
    """Mixed precision while the model is half; none in full precision or with --precision half (everything is fp16
    already). Decided by the dtypes alone (choose_precision keeps the CPU in fp32), so the CPU run in a GPU's dtypes
    (tests/test_half_precision_on_cpu.py) gets the autocast a GPU would."""
    if disable or force_fp16 or dtype == torch.float32 or dtype_inference == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def without_autocast(disable=False):
    # asks about the model's device: torch.is_autocast_enabled() without one answers for CUDA only
    if disable or not torch.is_autocast_enabled(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device.type, enabled=False)


def inference_context():
    return torch.inference_mode()


class NansException(Exception):
    pass


def test_for_nans(x, where):
    """Raise A1111's NansException (its wording) when `x` is all NaNs, instead of silently saving a black image."""
    from modules import shared
    if shared.cmd_opts.disable_nan_check:
        return
    if not torch.all(torch.isnan(x)).item():
        return
    if where == "unet":
        message = "A tensor with all NaNs was produced in Unet."
        if not shared.cmd_opts.no_half:
            message += " This could be either because there's not enough precision to represent the picture, or because your video card does not support half type. Try setting the \"Upcast cross attention layer to float32\" option in Settings > Stable Diffusion or using the --no-half commandline argument to fix this."
    elif where == "vae":
        message = "A tensor with all NaNs was produced in VAE."
        if not shared.cmd_opts.no_half and not shared.cmd_opts.no_half_vae:
            message += " This could be because there's not enough precision to represent the picture. Try adding --no-half-vae commandline argument to fix this."
    else:
        message = "A tensor with all NaNs was produced."
    message += " Use --disable-nan-check commandline argument to disable this check."
    raise NansException(message)


def randn(seed, shape, generator=None):
    from modules import rng
    return rng.randn(seed, shape, generator)


def randn_local(seed, shape):
    from modules import rng
    return rng.randn_local(seed, shape)


def randn_like(x):
    from modules import rng
    return rng.randn_like(x)


def randn_without_seed(shape, generator=None):
    from modules import rng
    return rng.randn_without_seed(shape, generator)


def manual_seed(seed):
    from modules import rng
    return rng.manual_seed(seed)


def first_time_calculation():
    """Warm up the torch kernels once so the first real job is not slower than the rest."""
    x = torch.zeros((1, 1)).to(device, dtype)
    torch.nn.Linear(1, 1).to(device, dtype)(x)
