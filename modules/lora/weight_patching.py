"""Writing networks into a model's weights in place, and taking them out again exactly.

A layer changed by networks keeps a CPU copy of its original weight and bias (A1111's attribute names:
`network_weights_backup`, `network_bias_backup`) and records which networks at which multipliers it now holds
(`network_current_names`). Patching a layer computes W + Σ multiplier × delta in float32 from the original (each
network sees the weight the previous ones made, as in A1111), then casts once to the layer's dtype. A layer whose
wanted set equals what it holds is left alone, so changing one network or multiplier re-patches only its layers; a
layer that no longer wants any network gets its original tensors back bit for bit and drops its copy.

Generation runs the plain layers: nothing is added to their forward. Each text encoder and the UNet get one forward
pre-hook that compares one tuple, so weights follow `networks.loaded_networks` even when an extension changes it (or
a multiplier) between steps.
"""
import weakref

import torch

from modules import devices
from modules.lora.layer_names import QKV_SUFFIXES


def _weight_and_bias(layer):
    if isinstance(layer, torch.nn.MultiheadAttention):
        return layer.in_proj_weight, layer.in_proj_bias
    return layer.weight, getattr(layer, "bias", None)


def _set_bias(layer, value):
    if isinstance(layer, torch.nn.MultiheadAttention):
        layer.in_proj_bias = value
    else:
        layer.bias = value


def modules_for_layer(net, layer_name, layer):
    """[(NetworkModule, rows)] of `net` that change `layer`; rows is a slice of the weight (MHA q/k/v) or None."""
    found = []
    module = net.modules.get(layer_name)
    if module is not None:
        found.append((module, None))
    if isinstance(layer, torch.nn.MultiheadAttention):  # OpenCLIP packs q, k, v into in_proj_weight
        width = layer.embed_dim
        for i, suffix in enumerate(QKV_SUFFIXES):
            module = net.modules.get(layer_name + suffix)
            if module is not None:
                found.append((module, slice(i * width, (i + 1) * width)))
    return found


def wanted_names(layer_name, layer, nets):
    """What `layer` should hold: (name, mtime, multiplier, dyn_dim) of each network that changes it at a nonzero
    multiplier (a zero multiplier leaves the layer untouched, so `<lora:x:0>` gives the original weights)."""
    wanted = []
    for net in nets:
        for module, _ in modules_for_layer(net, layer_name, layer):
            multiplier = module.multiplier()
            if multiplier != 0:
                wanted.append((net.name, net.mtime, multiplier, net.dyn_dim))
                break
    return tuple(wanted)


def restore_layer(layer):
    """Put back the original weight and bias (A1111: network_restore_weights_from_backup)."""
    weights_backup = getattr(layer, "network_weights_backup", None)
    if weights_backup is None:
        return
    weight, bias = _weight_and_bias(layer)
    with torch.no_grad():
        weight.copy_(weights_backup)
        bias_backup = getattr(layer, "network_bias_backup", None)
        if bias_backup is not None:
            bias.copy_(bias_backup)
        elif bias is not None and getattr(layer, "network_bias_added", False):
            _set_bias(layer, None)
    layer.network_bias_added = False
    layer.network_current_names = ()


def forget_backup(layer):
    layer.network_weights_backup = None
    layer.network_bias_backup = None


def _store_backup(layer):
    if getattr(layer, "network_weights_backup", None) is not None:
        return
    weight, bias = _weight_and_bias(layer)
    layer.network_weights_backup = weight.detach().to(devices.cpu, copy=True)
    layer.network_bias_backup = bias.detach().to(devices.cpu, copy=True) if bias is not None else None
    if not getattr(layer, "network_load_hook_installed", False):
        # weights loaded into this layer make the copy stale (A1111 patched _load_from_state_dict for this)
        layer._register_load_state_dict_pre_hook(_on_state_dict_load)
        layer.network_load_hook_installed = True


def _on_state_dict_load(module, *args, **kwargs):
    forget_backup(module)
    module.network_current_names = ()
    module.network_bias_added = False


def apply_to_layer(layer, nets, report_error):
    """Make `layer` hold exactly the wanted networks (A1111: network_apply_weights). report_error(net, message)."""
    layer_name = getattr(layer, "network_layer_name", None)
    if layer_name is None:
        return
    wanted = wanted_names(layer_name, layer, nets)
    if wanted == getattr(layer, "network_current_names", ()):
        return
    restore_layer(layer)
    if not wanted:
        forget_backup(layer)
        return

    _store_backup(layer)
    weight, bias = _weight_and_bias(layer)
    with torch.no_grad():
        # A float32 weight holds the original now and takes the changes in place; others get a float32 working copy
        # (a copy: for a float32 layer on the CPU, .to() alone would hand back the backup itself), made from the
        # weight as it was before FP8 where the "Cache FP16 weight for LoRA" setting kept it (modules.fp8_weights)
        in_place = weight.dtype == torch.float32
        original = getattr(layer, "fp16_weight", None)
        original = layer.network_weights_backup if original is None else original
        new_weight = weight if in_place else original.to(weight.device, dtype=torch.float32, copy=True)
        new_bias = layer.network_bias_backup.to(weight.device, dtype=torch.float32, copy=True) if layer.network_bias_backup is not None else None
        for net in nets:
            for module, rows in modules_for_layer(net, layer_name, layer):
                if module.multiplier() == 0:
                    continue
                target = new_weight if rows is None else new_weight[rows]
                try:
                    updown, ex_bias = module.calc_updown(target)
                    updown = _fit_to(updown, target)
                except (RuntimeError, ValueError, IndexError) as e:  # tensors of the wrong shape in the file
                    report_error(net, f"layer {layer_name}: {e}")
                    continue
                target += updown
                if ex_bias is not None and rows is None:
                    new_bias = ex_bias.to(torch.float32) if new_bias is None else new_bias + ex_bias
        if not in_place:
            weight.copy_(new_weight.to(weight.dtype))
        if new_bias is not None:
            if bias is None:
                _set_bias(layer, torch.nn.Parameter(new_bias.to(weight.dtype), requires_grad=False))
                layer.network_bias_added = True
            else:
                bias.copy_(new_bias.to(bias.dtype))
    layer.network_current_names = wanted


def _fit_to(updown, target):
    """The change shaped like the weight; a 4-channel change for a 9-channel inpainting conv_in is zero-padded."""
    if updown.shape == target.shape:
        return updown
    if updown.dim() == 4 and target.dim() == 4 and updown.shape[1] < target.shape[1] and updown.shape[0] == target.shape[0]:
        return torch.nn.functional.pad(updown, (0, 0, 0, 0, 0, target.shape[1] - updown.shape[1]))
    if updown.numel() == target.numel():
        return updown.reshape(target.shape)
    raise RuntimeError(f"the network's change has shape {tuple(updown.shape)}, the layer's weight {tuple(target.shape)} "
                       f"(a network for another model family?)")


class ModelPatchState:
    """What one model currently holds: the layers patched and the signature of the networks applied."""

    def __init__(self):
        self.patched_layers = set()     # layer names holding some network
        self.signature = None
        self.hook_handles = []


def install_sync_hooks(sd_model, roots, sync):
    """A forward pre-hook on each root (text encoder, UNet) calling sync(sd_model) before it runs."""
    state = sd_model.network_patch_state
    if state.hook_handles:
        return
    model_ref = weakref.ref(sd_model)

    def pre_hook(module, args):
        model = model_ref()
        if model is not None:
            sync(model)

    state.hook_handles = [root.register_forward_pre_hook(pre_hook) for root in roots]


def sync_layers(sd_model, layer_mapping, nets, signature, apply_layer):
    """Patch/restore the model's layers to hold `nets` with apply_layer(layer) (networks.network_apply_weights, so an
    extension replacing that is obeyed); layers untouched by `nets` and unpatched are not visited."""
    state = sd_model.network_patch_state
    if state.signature == signature:
        return
    touched = set(state.patched_layers)
    for net in nets:
        for module in net.modules.values():
            name = getattr(module.sd_module, "network_layer_name", None)
            if name is not None:
                touched.add(name)
    for name in touched:
        layer = layer_mapping.get(name)
        if layer is None:
            continue
        apply_layer(layer)
        if getattr(layer, "network_current_names", ()):
            state.patched_layers.add(name)
        else:
            state.patched_layers.discard(name)
    state.signature = signature
