"""Which device and dtypes the model runs on (A1111: modules.devices)."""
import contextlib
import sys

import torch

cpu = torch.device("cpu")


def has_mps() -> bool:
    return sys.platform == "darwin" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def get_cuda_device_string():
    from modules import shared
    if getattr(shared.cmd_opts, "device_id", None) is not None:
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
    use_cpu = getattr(shared.cmd_opts, "use_cpu", []) or []
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
fp8 = False


def configure(cmd_opts):
    """Pick device and dtypes from the flags: CPU runs in fp32; CUDA in fp16 (bf16 with --bf16) unless told otherwise."""
    global device, device_interrogate, device_gfpgan, device_esrgan, device_codeformer
    global dtype, dtype_vae, dtype_unet, dtype_inference, unet_needs_upcast
    device = get_device_for("sd")
    device_interrogate = get_device_for("interrogate")
    device_gfpgan = get_device_for("gfpgan")
    device_esrgan = get_device_for("esrgan")
    device_codeformer = get_device_for("codeformer")
    if device.type == "cpu":
        dtype = dtype_vae = dtype_unet = dtype_inference = torch.float32
        return
    half = torch.bfloat16 if getattr(cmd_opts, "bf16", False) else torch.float16
    dtype = dtype_unet = half
    dtype_vae = half
    if cmd_opts.no_half:
        dtype = dtype_unet = dtype_vae = torch.float32
    if cmd_opts.no_half_vae:
        dtype_vae = torch.float32
    dtype_inference = torch.float32 if cmd_opts.precision == "full" else dtype
    unet_needs_upcast = bool(cmd_opts.upcast_sampling) and dtype_unet != torch.float32
    enable_tf32()


def cond_cast_unet(tensor):
    return tensor.to(dtype_unet) if unet_needs_upcast else tensor


def cond_cast_float(tensor):
    return tensor.float() if unet_needs_upcast else tensor


def autocast(disable=False):
    """Mixed precision on CUDA when the model is half; a no-op on the CPU and in full precision."""
    if disable or device.type == "cpu" or dtype == torch.float32:
        return contextlib.nullcontext()
    from modules import shared
    if shared.cmd_opts.precision == "full":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def without_autocast(disable=False):
    if disable or not torch.is_autocast_enabled():
        return contextlib.nullcontext()
    return torch.autocast(device.type, enabled=False)


def inference_context():
    return torch.inference_mode()


class NansException(Exception):
    pass


def test_for_nans(x, where):
    """Raise a clear error instead of silently saving black images (A1111's wording)."""
    from modules import shared
    if getattr(shared.cmd_opts, "disable_nan_check", False):
        return
    if not torch.isnan(x[(0,) * len(x.shape)]) and not torch.all(torch.isnan(x)):
        if not torch.isnan(x).any():
            return
    if where == "unet":
        message = "A tensor with NaNs was produced in Unet."
        if not shared.cmd_opts.no_half:
            message += " This could be either because there's not enough precision to represent the picture, or because your video card does not support half type. Try setting the \"Upcast cross attention layer to float32\" option in Settings > Stable Diffusion or using the --no-half commandline argument to fix this."
    elif where == "vae":
        message = "A tensor with NaNs was produced in VAE."
        if not shared.cmd_opts.no_half and not shared.cmd_opts.no_half_vae:
            message += " This could be because there's not enough precision to represent the picture. Try adding --no-half-vae commandline argument to fix this."
    else:
        message = "A tensor with NaNs was produced."
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
