"""--medvram, --medvram-sdxl and --lowvram with A1111's meaning (A1111: modules.lowvram): parts of the model stay in
RAM and visit the GPU only while they run, one at a time.

--medvram: the text encoder, the UNet and the VAE take turns. --lowvram: the same, and the UNet visits block by block
(time embedding, each input block, the middle block, each output block). Without a flag, a model that does not fit
in free VRAM keeps the units that fit there resident and only the others take turns (modules.memory_placement).

A unit is brought to the GPU by a forward pre-hook on the module that runs it (the VAE: by its encode/decode), which
first sends the previous visitor back to the CPU. The hook also moves the call's tensor arguments to the GPU, so a
caller that reads the device from the (still offloaded) weights does not hand it CPU tensors.
"""
import weakref
from dataclasses import dataclass, field

import torch

from modules import devices, memory_placement, sd_hijack_clip, shared

module_in_gpu = None  # the unit visiting the GPU now (A1111 name; extensions read it)
cpu = torch.device("cpu")
_visitors = weakref.WeakSet()  # the units that rest in RAM and visit the GPU


def move(module, device):
    """The one place this module changes where weights live (the tests record it instead)."""
    module.to(device)


def send_everything_to_cpu():
    """Send the visiting unit back to RAM (extensions call this before running models of their own)."""
    global module_in_gpu
    if module_in_gpu is not None:
        move(module_in_gpu, cpu)
    module_in_gpu = None


def send_me_to_gpu(unit):
    """Bring `unit` to the GPU, sending the previous visitor back first."""
    global module_in_gpu
    if module_in_gpu is unit:
        return
    if module_in_gpu is not None:
        move(module_in_gpu, cpu)
    move(unit, devices.device)
    module_in_gpu = unit


def before_running(module):
    """Bring `module` to the GPU if it is a visiting unit: for code that runs its submodules directly (tiled VAE)."""
    if module in _visitors:
        send_me_to_gpu(module)


def is_needed(sd_model):
    """Whether the flags ask for a memory mode for this model (A1111)."""
    return bool(shared.cmd_opts.lowvram or shared.cmd_opts.medvram or (shared.cmd_opts.medvram_sdxl and sd_model.is_sdxl))


def is_enabled(sd_model):
    return sd_model.lowvram


def apply(sd_model):
    """After a model is loaded: the memory mode the flags ask for; without flags, automatic placement when the model
    does not fit in free VRAM; else nothing (the whole model stays on the GPU)."""
    enable = is_needed(sd_model)
    shared.parallel_processing_allowed = not enable
    if enable:
        setup_for_low_vram(sd_model, use_medvram=not shared.cmd_opts.lowvram)
    elif not memory_placement.fits(sd_model):
        setup_automatic_placement(sd_model)
    else:
        sd_model.lowvram = False


@dataclass
class _Unit:
    name: str
    module: torch.nn.Module                            # what moves
    hooks: list = field(default_factory=list)          # modules whose forward brings it to the GPU
    priority: int = 1                                  # the UNet's blocks run every step: kept on the GPU first


def _text_encoder_unit(sd_model):
    if sd_model.is_sdxl:
        return _Unit("text encoder", sd_model.conditioner, [sd_model.conditioner])
    encoder = sd_model.cond_stage_model
    if isinstance(encoder, sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase):
        encoder = encoder.wrapped  # set up after the prompt hijack (an extension calling setup_for_low_vram)
    if sd_model.is_sd2:
        return _Unit("text encoder", encoder, [encoder.model, encoder.model.token_embedding])
    return _Unit("text encoder", encoder, [encoder.transformer])


def units_of(sd_model, use_medvram):
    """The units that may take turns on the GPU, in the order they run."""
    units = [_text_encoder_unit(sd_model), _Unit("VAE", sd_model.first_stage_model)]
    if use_medvram:
        units.append(_Unit("UNet", sd_model.model, [sd_model.model], priority=2))
        return units
    unet = sd_model.model.diffusion_model
    blocks = [("time embedding", unet.time_embed)]
    blocks += [(f"input block {i}", block) for i, block in enumerate(unet.input_blocks)]
    blocks += [("middle block", unet.middle_block)]
    blocks += [(f"output block {i}", block) for i, block in enumerate(unet.output_blocks)]
    units += [_Unit(f"UNet {name}", module, [module], priority=2) for name, module in blocks]
    return units


def _move_all_but(root, excluded, device):
    """Move `root` to `device` except the `excluded` submodules (detached while the rest moves, as A1111 does)."""
    qualified = {id(module): name for name, module in root.named_modules()}
    detached = []
    for module in excluded:
        parent_name, _, attribute = qualified[id(module)].rpartition(".")
        parent = root.get_submodule(parent_name)
        detached.append((parent, attribute, module))
        setattr(parent, attribute, None)
    try:
        move(root, device)
    finally:
        for parent, attribute, module in detached:
            setattr(parent, attribute, module)


def _to_run_device(value):
    if isinstance(value, torch.Tensor) and value.device != devices.device:
        return value.to(devices.device)
    return value


def _install(unit):
    def pre_hook(module, args, kwargs):
        send_me_to_gpu(unit.module)
        return tuple(_to_run_device(a) for a in args), {k: _to_run_device(v) for k, v in kwargs.items()}

    for module in unit.hooks:
        module.register_forward_pre_hook(pre_hook, with_kwargs=True)


def _install_vae(vae):
    """The VAE runs through encode/decode, not forward: wrap those (A1111 does the same)."""
    encode, decode = vae.encode, vae.decode

    def encode_on_gpu(x, *args, **kwargs):
        send_me_to_gpu(vae)
        return encode(_to_run_device(x), *args, **kwargs)

    def decode_on_gpu(z, *args, **kwargs):
        send_me_to_gpu(vae)
        return decode(_to_run_device(z), *args, **kwargs)

    vae.encode, vae.decode = encode_on_gpu, decode_on_gpu
    vae.register_forward_pre_hook(lambda module, args: send_me_to_gpu(vae))


def _setup(sd_model, units, resident=frozenset()):
    if sd_model.lowvram:
        return
    sd_model.lowvram = True
    sd_model.run_device = devices.device  # the model runs on the GPU even while its weights rest in RAM
    streamed = [unit for unit in units if unit.name not in resident]
    _move_all_but(sd_model, [unit.module for unit in streamed], devices.device)
    for unit in streamed:
        move(unit.module, cpu)
        _visitors.add(unit.module)
        if unit.name == "VAE":
            _install_vae(unit.module)
        else:
            _install(unit)


def send_model_to(sd_model, device):
    """Move a whole model to `device` (a kept checkpoint resting in RAM or coming back); under a memory mode its
    visiting units stay in RAM, where they rest between visits."""
    if not sd_model.lowvram:
        move(sd_model, device)
        return
    visitors = [module for module in sd_model.modules() if module in _visitors]
    if module_in_gpu in visitors:
        send_everything_to_cpu()
    _move_all_but(sd_model, visitors, device)


def setup_for_low_vram(sd_model, use_medvram):
    """--medvram (use_medvram) or --lowvram: every unit takes turns on the GPU."""
    _setup(sd_model, units_of(sd_model, use_medvram))


def setup_automatic_placement(sd_model):
    """The --lowvram units that fit in free VRAM stay there; the others take turns."""
    units = units_of(sd_model, use_medvram=False)
    sizes = [memory_placement.Unit(u.name, memory_placement.tensor_bytes(u.module), u.priority) for u in units]
    streamed_bytes = sum(s.nbytes for s in sizes)
    rest = memory_placement.tensor_bytes(sd_model) - streamed_bytes  # what always lives on the GPU
    budget = memory_placement.budget_for(sd_model, devices.device) - rest
    resident = memory_placement.choose_resident(sizes, budget)
    kept = sum(s.nbytes for s in sizes if s.name in resident)
    print(f"Model does not fit in free VRAM: {len(resident)} of {len(units)} parts ({kept / 2 ** 30:.2f} GiB) stay on "
          f"the GPU, {len(units) - len(resident)} ({(streamed_bytes - kept) / 2 ** 30:.2f} GiB) visit it while they run")
    _setup(sd_model, units, resident)
