"""A network file on disk, the network loaded from it, and the per-layer module base class
(A1111: the built-in Lora extension's `network` module; extensions import it as `network`).

A network file holds weights for some of a model's layers, grouped by layer ("lora_unet_..._to_q.lora_up.weight"
and "..._to_q.lora_down.weight" belong to one layer). Each group becomes a `NetworkModule` of the type its keys
name (LoRA, LoHa, LoKr, ...), whose `calc_updown(W)` returns the change to the layer's weight at the network's
multiplier.
"""
import enum
import os
from collections import namedtuple

import torch

from modules import cache, errors, hashes, sd_models, shared

NetworkWeights = namedtuple("NetworkWeights", ["network_key", "sd_key", "w", "sd_module"])

metadata_tags_order = {"ss_sd_model_name": 1, "ss_resolution": 2, "ss_clip_skip": 3, "ss_num_train_images": 10, "ss_tag_frequency": 20}


class SdVersion(enum.Enum):
    Unknown = 1
    SD1 = 2
    SD2 = 3
    SDXL = 4


class NetworkOnDisk:
    """A LoRA/LyCORIS file found in the Lora folders: its names, training metadata and hash (read lazily)."""

    def __init__(self, name, filename):
        self.name = name
        self.filename = filename
        self.metadata = {}
        self.is_safetensors = os.path.splitext(filename)[1].lower() == ".safetensors"

        if self.is_safetensors:
            try:
                self.metadata = cache.cached_data_for_file("safetensors-metadata", "lora/" + self.name, filename,
                                                           lambda: sd_models.read_metadata_from_safetensors(filename))
            except Exception as e:
                errors.display(e, f"reading lora {filename}")
        if self.metadata:
            self.metadata = dict(sorted(self.metadata.items(), key=lambda x: metadata_tags_order.get(x[0], 999)))

        self.alias = str(self.metadata.get("ss_output_name", self.name))
        self.hash = None
        self.shorthash = None
        self.set_hash(self.metadata.get("sshs_model_hash")
                      or hashes.sha256_from_cache(self.filename, "lora/" + self.name, use_addnet_hash=self.is_safetensors)
                      or "")
        self.sd_version = self.detect_version()

    def detect_version(self):
        if str(self.metadata.get("ss_base_model_version", "")).startswith("sdxl_"):
            return SdVersion.SDXL
        if str(self.metadata.get("ss_v2", "")) == "True":
            return SdVersion.SD2
        if self.metadata:
            return SdVersion.SD1
        return SdVersion.Unknown

    def set_hash(self, v):
        self.hash = v
        self.shorthash = self.hash[0:12]
        if self.shorthash:
            from modules.lora import networks
            networks.available_network_hash_lookup[self.shorthash] = self

    def read_hash(self):
        """Hash the file now if it is not hashed yet (A1111's "addnet" hash for safetensors: the data after the header)."""
        if not self.hash:
            self.set_hash(hashes.sha256(self.filename, "lora/" + self.name, use_addnet_hash=self.is_safetensors) or "")

    def get_alias(self):
        """The name a prompt tag uses for this file: its metadata alias unless the setting or a clash says file name."""
        from modules.lora import networks
        if shared.opts.lora_preferred_name == "Filename" or self.alias.lower() in networks.forbidden_network_aliases:
            return self.name
        return self.alias

    def __repr__(self):
        return f"NetworkOnDisk({self.name!r}, {self.filename!r})"


class Network:
    """A network loaded for the current job, with its multipliers (A1111 calls it a LoraModule).

    te_multiplier/unet_multiplier/dyn_dim are plain instance attributes on purpose: extensions (loractl) replace
    them with class-level properties to vary the weight per sampling step.
    """

    def __init__(self, name, network_on_disk):
        self.name = name
        self.network_on_disk = network_on_disk
        self.te_multiplier = 1.0
        self.unet_multiplier = 1.0
        self.dyn_dim = None
        self.modules = {}            # layer name ("diffusion_model_input_blocks_1_1_proj_in") -> NetworkModule
        self.bundle_embeddings = {}
        self.mtime = None
        self.mentioned_name = None
        self.weight_groups = {}      # layer key in the file -> {weight part: tensor}
        self.unknown_keys = []       # keys of the file in no network format
        self.unmatched_keys = []     # layer keys of the file that name no layer of the bound model
        self.bound_model = None      # weakref to the model whose layers `modules` refer to (networks.bind_network)


class ModuleType:
    def create_module(self, net: Network, weights: NetworkWeights):
        """A NetworkModule if `weights` (one layer's tensors) are of this type, else None."""
        return None


class NetworkModule:
    """The part of a network that changes one layer. Subclasses compute the weight change in `calc_updown`."""

    def __init__(self, net: Network, weights: NetworkWeights):
        self.network = net
        self.network_key = weights.network_key
        self.sd_key = weights.sd_key
        self.sd_module = weights.sd_module
        self.is_text_encoder = not self.sd_key.startswith("diffusion_model_")
        weight = getattr(self.sd_module, "weight", None)
        if isinstance(self.sd_module, torch.nn.MultiheadAttention):
            # a third of the packed q/k/v projection
            weight = self.sd_module.in_proj_weight[:self.sd_module.embed_dim]
        self.shape = weight.shape if weight is not None else None
        self.ops = None
        self.extra_kwargs = {}
        if isinstance(self.sd_module, torch.nn.Conv2d):
            self.ops = torch.nn.functional.conv2d
            self.extra_kwargs = {"stride": self.sd_module.stride, "padding": self.sd_module.padding}
        elif isinstance(self.sd_module, torch.nn.Linear):
            self.ops = torch.nn.functional.linear
        self.dim = None
        self.alpha = weights.w["alpha"].item() if "alpha" in weights.w else None
        self.scale = weights.w["scale"].item() if "scale" in weights.w else None
        # DoRA magnitudes: LyCORIS/kohya `dora_scale` is per output row when shaped [out, 1, ...], else per input
        # column [1, in, ...]; PEFT's `lora_magnitude_vector` is always per output row (even shaped [1, out, 1, 1])
        self.dora_scale = weights.w.get("dora_scale", None)
        self.dora_on_output = self.dora_scale is not None and self.dora_scale.shape[0] != 1
        if "lora_magnitude_vector" in weights.w:
            self.dora_scale = weights.w["lora_magnitude_vector"].flatten()
            self.dora_on_output = True
        self.dora_norm_dims = len(self.shape) - 1 if self.shape is not None else 0

    def multiplier(self):
        return self.network.te_multiplier if self.is_text_encoder else self.network.unet_multiplier

    def calc_scale(self):
        if self.scale is not None:
            return self.scale
        if self.dim is not None and self.alpha is not None:
            return self.alpha / self.dim
        return 1.0

    def apply_weight_decompose(self, updown, orig_weight):
        """DoRA: the patched weight rescaled so each output row (or input column) has the stored magnitude;
        returns the change from orig_weight."""
        orig_weight = orig_weight.to(updown.dtype)
        dora_scale = self.dora_scale.to(device=orig_weight.device, dtype=updown.dtype)
        merged = orig_weight + updown
        if self.dora_on_output:
            norm = merged.reshape(merged.shape[0], -1).norm(dim=1).reshape(merged.shape[0], *[1] * self.dora_norm_dims)
        else:
            norm = merged.transpose(0, 1).reshape(merged.shape[1], -1).norm(dim=1, keepdim=True)
            norm = norm.reshape(merged.shape[1], *[1] * self.dora_norm_dims).transpose(0, 1)
        return merged * (dora_scale.reshape(norm.shape) / norm) - orig_weight

    def finalize_updown(self, updown, orig_weight, output_shape, ex_bias=None):
        """The raw change reshaped to the layer, scaled (alpha/rank), DoRA-normalised, times the multiplier."""
        if len(output_shape) == 4:
            updown = updown.reshape(output_shape)
        if orig_weight.size().numel() == updown.size().numel():
            updown = updown.reshape(orig_weight.shape)
        if ex_bias is not None:
            ex_bias = ex_bias * self.multiplier()
        updown = updown * self.calc_scale()
        if self.dora_scale is not None:
            updown = self.apply_weight_decompose(updown, orig_weight)
        return updown * self.multiplier(), ex_bias

    def calc_updown(self, target):
        raise NotImplementedError()

    def forward(self, x, y):
        """The network's contribution to the layer's output for input x (used by the functional mode of extensions)."""
        updown, ex_bias = self.calc_updown(self.sd_module.weight)
        return y + self.ops(x, weight=updown, bias=ex_bias, **self.extra_kwargs)
