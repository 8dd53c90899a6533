"""FP8 weight storage (A1111's "FP8 weight" setting): Linear and Conv2d weights of the UNet and text encoder are kept
in float8_e4m3fn, half the memory of fp16, and each layer casts its weight back to the activations' dtype as it runs.

The VAE is left alone (it is small, and its colours suffer first), and so is the UNet's timestep embedding: the UNet
reads the dtype it computes in from that layer's weight.

With "Cache FP16 weight for LoRA", each converted layer keeps its weight as it was before (fp16 or bf16) in RAM, as
`fp16_weight` (A1111's name): LoRAs are then added to that rather than to the FP8-rounded weight
(modules.lora.weight_patching), so the patched weight is rounded to FP8 once instead of twice.
"""
import sys

import torch
import torch.nn.functional as F
from torch import nn

from modules import devices, shared

FP8_DTYPE = getattr(torch, "float8_e4m3fn", None)
KEPT_IN_COMPUTE_DTYPE = ("time_embed", "label_emb")  # UNet parts that set its compute dtype


def wanted(sd_model) -> bool:
    """Whether the setting asks for FP8 for this model and the device can store it (else says why not)."""
    mode = shared.opts.fp8_storage
    if mode == "Disable" or (mode == "Enable for SDXL" and not sd_model.is_sdxl):
        return False
    if not devices.supports_fp8_storage(devices.device):
        print(f"FP8 weight is set to {mode!r}, but {devices.device} cannot store float8 weights (CUDA GPUs only): "
              f"the model keeps {str(devices.dtype_unet).replace('torch.', '')} weights", file=sys.stderr)
        return False
    return True


def _compute_dtype(x):
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return x.dtype


def _linear_forward(self, x):
    dtype = _compute_dtype(x)
    bias = None if self.bias is None else self.bias.to(dtype)
    return F.linear(x.to(dtype), self.weight.to(dtype), bias)


def _conv_forward(self, x):
    dtype = _compute_dtype(x)
    bias = None if self.bias is None else self.bias.to(dtype)
    return self._conv_forward(x.to(dtype), self.weight.to(dtype), bias)


def store_in_fp8(root: nn.Module, skip=KEPT_IN_COMPUTE_DTYPE, keep_original=False) -> int:
    """Convert the Linear/Conv2d weights under `root` (except submodules named in `skip`) to FP8 in place, each
    layer casting back as it runs; `keep_original`: a RAM copy of each weight before, as `fp16_weight`. Returns how
    many layers were converted."""
    count = 0
    for name, module in root.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or name.split(".")[0] in skip or module.weight.dtype == FP8_DTYPE:
            continue
        if keep_original:
            module.fp16_weight = module.weight.detach().to(devices.cpu, copy=True)
        module.weight = nn.Parameter(module.weight.detach().to(FP8_DTYPE), requires_grad=False)
        forward = _linear_forward if isinstance(module, nn.Linear) else _conv_forward
        module.forward = forward.__get__(module)
        count += 1
    return count


def apply(sd_model):
    """FP8 storage for the loaded model's UNet and text encoder when wanted; sets devices.fp8 either way."""
    devices.fp8 = wanted(sd_model)
    if devices.fp8:
        keep = shared.opts.cache_fp16_weight
        store_in_fp8(sd_model.model.diffusion_model, keep_original=keep)
        store_in_fp8(sd_model.cond_stage_model, keep_original=keep)
    return devices.fp8
