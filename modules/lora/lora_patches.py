"""The torch layer methods as they were before networks or extensions touched them
(A1111: the Lora extension's `lora_patches`, reached as `networks.originals`).

A1111 replaced torch.nn.Linear/Conv2d/... forward and _load_from_state_dict with versions that apply networks on
every call. This engine writes networks into the weights ahead of time instead (see weight_patching), so the torch
classes stay as they are; extensions that wrap a layer's forward themselves call these originals.
"""
import torch


class LoraPatches:
    def __init__(self):
        self.Linear_forward = torch.nn.Linear.forward
        self.Linear_load_state_dict = torch.nn.Linear._load_from_state_dict
        self.Conv2d_forward = torch.nn.Conv2d.forward
        self.Conv2d_load_state_dict = torch.nn.Conv2d._load_from_state_dict
        self.GroupNorm_forward = torch.nn.GroupNorm.forward
        self.GroupNorm_load_state_dict = torch.nn.GroupNorm._load_from_state_dict
        self.LayerNorm_forward = torch.nn.LayerNorm.forward
        self.LayerNorm_load_state_dict = torch.nn.LayerNorm._load_from_state_dict
        self.MultiheadAttention_forward = torch.nn.MultiheadAttention.forward
        self.MultiheadAttention_load_state_dict = torch.nn.MultiheadAttention._load_from_state_dict

    def undo(self):
        """Nothing was replaced, so there is nothing to put back (A1111 restored its patches here)."""
