"""Does the model fit in free VRAM, and if not, which of its parts stay there (the default on small cards, without
--medvram/--lowvram; Forge's approach).

The model is cut into the --lowvram units (text encoder, VAE, the UNet's time embedding and each of its blocks). When
the whole model and a reserve for the activations fit in free VRAM, everything lives on the GPU. Otherwise units are
kept resident in order of how often they run (the UNet's blocks run every step, the text encoder and the VAE once a
job) while the resident ones, plus room for the largest unit that still has to visit, fit in the budget; the rest
take turns on the GPU as with --lowvram (modules.lowvram).
"""
from dataclasses import dataclass

import torch

from modules import devices

GIB = 2 ** 30
# VRAM kept free for activations beside the weights: the UNet's at 1024x1024 with CFG (SDPA attention), measured
# as about 1 GiB for SD1.5 and 2 GiB for SDXL in fp16; the VAE tiles itself when a decode would not fit.
ACTIVATION_RESERVE = {"sd": int(1.25 * GIB), "sdxl": int(2.5 * GIB)}


@dataclass(frozen=True)
class Unit:
    name: str
    nbytes: int
    priority: int  # higher stays on the GPU first: the UNet's blocks (every step) before the text encoder and VAE


def tensor_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def bytes_on_device(module: torch.nn.Module, device) -> int:
    """Bytes of `module`'s tensors that already sit on `device` (they need no new room there)."""
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers())
               if t.device.type == device.type)


def free_vram(device) -> int:
    free, _total = torch.cuda.mem_get_info(device)
    return free


def activation_reserve(sd_model) -> int:
    return ACTIVATION_RESERVE["sdxl" if sd_model.is_sdxl else "sd"]


def budget_for(sd_model, device) -> int:
    """VRAM this model's weights may take: free VRAM (plus what it already holds there) less the activation reserve."""
    return free_vram(device) + bytes_on_device(sd_model, device) - activation_reserve(sd_model)


def fits(sd_model, device=None) -> bool:
    """Whether the whole model can live on `device` (anything but a CUDA GPU: always)."""
    device = device or devices.device
    if device.type != "cuda":
        return True
    return tensor_bytes(sd_model) <= budget_for(sd_model, device)


def fits_bytes(model_bytes, is_sdxl, device=None) -> bool:
    """`fits` for a model not built yet (its weights' size from the checkpoint), to choose where they load to."""
    device = device or devices.device
    if device.type != "cuda":
        return True
    return model_bytes <= free_vram(device) - ACTIVATION_RESERVE["sdxl" if is_sdxl else "sd"]


def choose_resident(units: list[Unit], budget: int) -> set:
    """Names of the units to keep on the GPU: highest priority first (larger first among equals), each taken while
    the resident ones plus the largest unit left to visit still fit in `budget`."""
    resident, used = set(), 0
    for unit in sorted(units, key=lambda u: (-u.priority, -u.nbytes)):
        visitors = [u.nbytes for u in units if u.name not in resident and u.name != unit.name]
        if used + unit.nbytes + max(visitors, default=0) <= budget:
            resident.add(unit.name)
            used += unit.nbytes
    return resident
