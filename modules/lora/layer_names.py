"""Which model layer a network file's key names, for any model family.

Network files name layers in two ways: kohya/LyCORIS keys ("lora_unet_down_blocks_0_attentions_0_proj_in",
"lora_te_text_model_encoder_layers_0_mlp_fc1") and PEFT/diffusers keys ("unet.down_blocks.0.attentions.0.proj_in",
"text_encoder.text_model.encoder.layers.0.mlp.fc1"). UNet names come in diffusers block names (SD1/SD2 files) or
the original ldm names (SDXL files: "lora_unet_input_blocks_4_1_..."). Nothing here is specific to a family: the
diffusers block names are worked out by walking the UNet's own blocks, so any channel/level layout gets its table.

A layer's own name is A1111's (`network_layer_name`): its module path with "_" for "." under the text encoder's
wrapper ("transformer_text_model_encoder_layers_0_mlp_fc1") or under `sd_model.model` ("diffusion_model_...").
"""
import re
from dataclasses import dataclass, field

import torch

# The layer types a network can change (subclasses such as GroupNorm32 included).
PATCHABLE_TYPES = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.MultiheadAttention)

# ResBlock parts: ldm name -> diffusers name
RESBLOCK_PARTS = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
                  "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}

UNET_FIXED_BLOCKS = {"time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
                     "input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out",
                     "label_emb.0.0": "add_embedding.linear_1", "label_emb.0.2": "add_embedding.linear_2"}


@dataclass
class ModelPart:
    """A text encoder or the UNet: where its layers are, how layers are named, how network keys address them."""
    is_text_encoder: bool
    root: torch.nn.Module          # the module whose forward runs the part (hooked to keep weights current)
    layer_root: torch.nn.Module    # layer names are module paths under this
    layer_prefix: str              # ... prefixed with this
    key_root: torch.nn.Module      # network keys are module paths under this
    key_prefixes: tuple            # ... prefixed with one of these (kohya form)
    block_names: dict = field(default_factory=dict)  # ldm block path -> diffusers block path (UNet only)
    openclip_blocks: tuple = None  # (path, module holding `resblocks`) of an OpenCLIP text encoder


def _class_name(module):
    return type(module).__name__


def diffusers_block_names(unet):
    """ldm block path -> diffusers block path ("input_blocks.4.1" -> "down_blocks.1.attentions.0"), from the
    UNet's own blocks: a Downsample ends a level, ResBlocks and transformers count up within it."""
    table = dict(UNET_FIXED_BLOCKS)

    level, i = 0, 0
    for n, block in enumerate(unet.input_blocks):
        if n == 0:
            continue
        kinds = [_class_name(m) for m in block]
        if "Downsample" in kinds:
            table[f"input_blocks.{n}.0.op"] = f"down_blocks.{level}.downsamplers.0.conv"
            level, i = level + 1, 0
            continue
        for position, kind in enumerate(kinds):
            if kind == "ResBlock":
                table[f"input_blocks.{n}.{position}"] = f"down_blocks.{level}.resnets.{i}"
            elif kind == "SpatialTransformer":
                table[f"input_blocks.{n}.{position}"] = f"down_blocks.{level}.attentions.{i}"
        i += 1

    resnets = 0
    for position, block in enumerate(unet.middle_block):
        kind = _class_name(block)
        if kind == "ResBlock":
            table[f"middle_block.{position}"] = f"mid_block.resnets.{resnets}"
            resnets += 1
        elif kind == "SpatialTransformer":
            table[f"middle_block.{position}"] = "mid_block.attentions.0"

    level, i = 0, 0
    for n, block in enumerate(unet.output_blocks):
        kinds = [_class_name(m) for m in block]
        for position, kind in enumerate(kinds):
            if kind == "ResBlock":
                table[f"output_blocks.{n}.{position}"] = f"up_blocks.{level}.resnets.{i}"
            elif kind == "SpatialTransformer":
                table[f"output_blocks.{n}.{position}"] = f"up_blocks.{level}.attentions.{i}"
            elif kind == "Upsample":
                table[f"output_blocks.{n}.{position}.conv"] = f"up_blocks.{level}.upsamplers.0.conv"
        i += 1
        if "Upsample" in kinds:  # an Upsample ends a decoder level
            level, i = level + 1, 0
    return table


def diffusers_path(block_names, path):
    """The diffusers path of an ldm module path, or None if its block has no diffusers name."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        block = block_names.get(prefix)
        if block is None:
            continue
        rest = ".".join(parts[end:])
        if ".resnets." in block and rest:
            for ldm_part, diffusers_part in RESBLOCK_PARTS.items():
                if rest == ldm_part or rest.startswith(ldm_part + "."):
                    rest = diffusers_part + rest[len(ldm_part):]
                    break
        return block + ("." + rest if rest else "")
    return None


# OpenCLIP text encoders (SD2, SDXL's bigG) are addressed by files with CLIP's transformers names:
# "text_model_encoder_layers_N_" + part -> resblocks.N.<OpenCLIP part>; q/k/v are thirds of attn.in_proj_weight
OPENCLIP_PARTS = {"self_attn_out_proj": "attn.out_proj", "mlp_fc1": "mlp.c_fc", "mlp_fc2": "mlp.c_proj",
                  "layer_norm1": "ln_1", "layer_norm2": "ln_2"}
OPENCLIP_QKV = {"self_attn_q_proj": "_q_proj", "self_attn_k_proj": "_k_proj", "self_attn_v_proj": "_v_proj"}
QKV_SUFFIXES = ("_q_proj", "_k_proj", "_v_proj")


def _first(module, predicate):
    """(path, submodule) of the first submodule (module itself included) satisfying predicate, or (None, None)."""
    for path, child in module.named_modules():
        if predicate(child):
            return path, child
    return None, None


def text_encoder_layout(module):
    """("clip", path, the module whose `text_model` is a CLIP text model) or ("open_clip", path, the
    module holding `resblocks`), or (None, None, None) for an embedder that is no text encoder."""
    path, found = _first(module, lambda m: isinstance(getattr(m, "text_model", None), torch.nn.Module))
    if found is not None:
        return "clip", path, found
    path, found = _first(module, lambda m: isinstance(getattr(m, "resblocks", None), torch.nn.ModuleList))
    if found is not None:
        return "open_clip", path, found
    return None, None, None


# kohya's SDXL key prefixes name fixed slots: lora_te1_ the CLIP ViT-L in embedder 0, lora_te2_ the OpenCLIP bigG in
# embedder 1 (A1111 maps them to "0_transformer_text_model_..." and "1_model_transformer_resblocks_..."). Neither names
# the SDXL refiner's lone bigG (embedder 0), so a base model's LoRA leaves the refiner's text encoder alone, as in
# A1111; the refiner's encoder takes SD1/SD2's single-encoder prefix lora_te_ (ComfyUI's rule), which no SDXL base
# file uses, and lora_te_ (an SD1 file's) names no encoder of an SDXL base.
SDXL_KOHYA_SLOTS = {(0, "clip"): "lora_te1_", (1, "open_clip"): "lora_te2_"}


def text_encoder_roots(sd_model):
    """(layer-name prefix, module layer names are relative to, kohya key prefixes) per text encoder, as A1111 names
    them: SD1/SD2's `cond_stage_model.wrapped` with no prefix; SDXL's `conditioner.embedders[i].wrapped` as "i_"."""
    conditioner = getattr(sd_model, "conditioner", None)
    if conditioner is None:
        cond = getattr(sd_model, "cond_stage_model", None)
        if cond is not None:
            yield "", getattr(cond, "wrapped", cond), ("lora_te_", "lora_te1_")  # A1111 takes SD1 files' lora_te1_ too
        return
    encoders = []
    for i, embedder in enumerate(conditioner.embedders):
        root = getattr(embedder, "wrapped", embedder)
        layout = text_encoder_layout(root)[0]
        if layout is not None:
            encoders.append((i, root, layout))
    for i, root, layout in encoders:
        prefix = "lora_te_" if len(encoders) == 1 else SDXL_KOHYA_SLOTS.get((i, layout))
        yield f"{i}_", root, (prefix,) if prefix else ()


def model_parts(sd_model):
    """The text encoder(s) and the UNet of a loaded model, as ModelParts."""
    parts = []
    for layer_prefix, root, key_prefixes in text_encoder_roots(sd_model):
        layout, path, found = text_encoder_layout(root)
        if layout == "clip":
            parts.append(ModelPart(True, found, root, layer_prefix, found, key_prefixes))
        elif layout == "open_clip":
            # A1111-style encoders run the blocks one by one: the first block is what every encoding runs
            parts.append(ModelPart(True, found.resblocks[0], root, layer_prefix, root, key_prefixes,
                                   openclip_blocks=(path, found)))
    unet = sd_model.model.diffusion_model
    parts.append(ModelPart(False, unet, sd_model.model, "", unet, ("lora_unet_",), diffusers_block_names(unet)))
    return parts


def underscored(path):
    return path.replace(".", "_")


class LayerTables:
    """A model's layers by A1111 name, and which layer each network key names.

    layers: layer name -> patchable layer (each stamped with `network_layer_name`, which extensions read)
    keys: network key (kohya form) -> the name a network's module for it is filed under: a layer name, or for a
          third of a MultiheadAttention's packed q/k/v, the layer name + "_q_proj"/"_k_proj"/"_v_proj"
    packed: those q/k/v names -> their MultiheadAttention
    parts: the model's ModelParts
    """

    def __init__(self, sd_model):
        self.layers, self.keys, self.packed = {}, {}, {}
        self.parts = model_parts(sd_model)
        for part in self.parts:
            self._add_part(part)

    def layer_for(self, name):
        return self.layers.get(name) or self.packed.get(name)

    def _add(self, part, key_path, name):
        for prefix in part.key_prefixes:
            self.keys.setdefault(prefix + underscored(key_path), name)

    def _add_part(self, part):
        key_paths = {module: path for path, module in part.key_root.named_modules()}
        for path, module in part.layer_root.named_modules():
            if module is part.layer_root or not isinstance(module, PATCHABLE_TYPES):
                continue
            key_path = key_paths.get(module)
            if key_path is None:
                continue
            layer_name = part.layer_prefix + underscored(path)
            self.layers[layer_name] = module
            module.network_layer_name = layer_name
            self._add(part, key_path, layer_name)
            if part.block_names:
                converted = diffusers_path(part.block_names, key_path)
                if converted is not None:
                    self._add(part, converted, layer_name)
            if isinstance(module, torch.nn.MultiheadAttention):
                for suffix in QKV_SUFFIXES:
                    self.packed[layer_name + suffix] = module
                    self._add(part, key_path + suffix, layer_name + suffix)
        if part.openclip_blocks is not None:
            self._add_transformers_names(part)

    def _add_transformers_names(self, part):
        blocks_path, blocks = part.openclip_blocks
        for n in range(len(blocks.resblocks)):
            block = part.layer_prefix + underscored(f"{blocks_path}.resblocks.{n}" if blocks_path else f"resblocks.{n}")
            for hf_part, openclip_part in OPENCLIP_PARTS.items():
                self._add(part, f"text_model.encoder.layers.{n}.{hf_part}", f"{block}_{underscored(openclip_part)}")
            for hf_part, suffix in OPENCLIP_QKV.items():
                self._add(part, f"text_model.encoder.layers.{n}.{hf_part}", f"{block}_attn{suffix}")


# PEFT/diffusers files: the first path component says which part the key is for
DOTTED_ROOTS = {"unet": "lora_unet_", "text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}

# weight-part names of dotted (PEFT/diffusers) keys -> the kohya/LyCORIS names the network types read
DOTTED_PARTS = {
    "lora_A.weight": "lora_down.weight", "lora_B.weight": "lora_up.weight",
    "lora.down.weight": "lora_down.weight", "lora.up.weight": "lora_up.weight",
    "lora_down.weight": "lora_down.weight", "lora_up.weight": "lora_up.weight", "lora_mid.weight": "lora_mid.weight",
    "lora_magnitude_vector": "lora_magnitude_vector", "lora_magnitude_vector.weight": "lora_magnitude_vector",
    "alpha": "alpha", "dora_scale": "dora_scale",
}
DOTTED_PART_ORDER = sorted(DOTTED_PARTS, key=len, reverse=True)  # longest first: "lora.down.weight" before "alpha"

# old diffusers attention-processor keys: "...attn1.processor.to_q_lora.down.weight" is attn1.to_q's lora_down
re_processor_key = re.compile(r"^(.*)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$")

KOHYA_PREFIX_ALIASES = {"oft_unet_": "lora_unet_", "lycoris_unet_": "lora_unet_", "lycoris_te_": "lora_te_"}


def split_network_key(key):
    """A file key -> (layer key in kohya form, weight part), e.g.
    "unet.mid_block.attentions.0.proj_in.lora_A.weight" -> ("lora_unet_mid_block_attentions_0_proj_in", "lora_down.weight");
    "lora_te_text_model_encoder_layers_0_mlp_fc1.hada_w1_a" -> ("lora_te_text_model_encoder_layers_0_mlp_fc1", "hada_w1_a").
    """
    head, _, rest = key.partition(".")
    for alias, prefix in KOHYA_PREFIX_ALIASES.items():
        if head.startswith(alias):
            head = prefix + head[len(alias):]
    if head.startswith(("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")):
        return head, rest

    path = key[len("base_model.model."):] if key.startswith("base_model.model.") else key
    processor = re_processor_key.match(path)
    if processor:
        target = "to_out.0" if processor[2] == "to_out" else processor[2]
        module_path, weight_part = f"{processor[1]}.{target}", f"lora_{processor[3]}.weight"
    else:
        part = next((p for p in DOTTED_PART_ORDER if path.endswith("." + p)), None)
        if part is None:
            return None, None
        module_path, weight_part = path[:-len(part) - 1], DOTTED_PARTS[part]
    root, _, sub_path = module_path.partition(".")
    prefix = DOTTED_ROOTS.get(root)
    if prefix is None:  # a bare UNet dump (PEFT's get_peft_model_state_dict of a UNet)
        prefix, sub_path = "lora_unet_", module_path
    return prefix + underscored(sub_path), weight_part
