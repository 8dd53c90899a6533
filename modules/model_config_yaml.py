"""`<checkpoint>.yaml` beside a checkpoint: the original training config, which A1111 builds the model from.

We read the architecture from the weights, so the yaml only decides what weights cannot show: head counts
(UNet `num_heads` / `num_head_channels`; a text encoder's `heads`, or the head count its OpenCLIP `arch` / CLIP
`version` implies), the prediction type (`parameterization: "v"`), the latent `scale_factor` and which text encoder
layer is used (`layer`: last / penultimate / hidden with `layer_idx`). Both layouts are understood: latent-diffusion's
(`unet_config`, `cond_stage_config`) and sgm's (`network_config`, `conditioner_config.params.emb_models`).
"""
import dataclasses
import os

import yaml

# Head counts of the text encoders the original configs name.
OPEN_CLIP_ARCH_HEADS = {"ViT-H-14": 16, "ViT-bigG-14": 20, "ViT-L-14": 12, "ViT-B-32": 8, "ViT-B-16": 8}
CLIP_VERSION_HEADS = {"openai/clip-vit-large-patch14": 12, "openai/clip-vit-base-patch32": 8}


class ModelYamlError(ValueError):
    """The yaml beside a checkpoint is unreadable or asks for something we cannot build."""


@dataclasses.dataclass
class TextEncoderOverrides:
    heads: int = None
    layer: str = None
    layer_idx: int = None


@dataclasses.dataclass
class YamlOverrides:
    parameterization: str = None
    scale_factor: float = None
    unet_heads: dict = None                 # {"num_heads": n, "num_head_channels": -1} or the other way round
    text_encoders: list = dataclasses.field(default_factory=list)   # TextEncoderOverrides, in checkpoint order


def path_beside(checkpoint_file):
    return os.path.splitext(checkpoint_file)[0] + ".yaml"


def read(checkpoint_file):
    """The overrides of the `<checkpoint>.yaml` beside the file, or None when there is none."""
    path = path_beside(checkpoint_file)
    if not os.path.isfile(path):
        return None
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf8") as file:
            data = yaml.safe_load(file)
    except (OSError, yaml.YAMLError) as e:
        raise ModelYamlError(f"{name}: the config beside the checkpoint cannot be read: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ModelYamlError(f"{name}: the config beside the checkpoint has no 'model:' section")
    return overrides(data, name)


def _params(section):
    if not isinstance(section, dict):
        return {}
    return section.get("params") or {}


def _text_encoder_sections(model_params):
    """The text encoders' config sections, in the checkpoint's order (SDXL's size/score embedders left out)."""
    if "cond_stage_config" in model_params:
        return [model_params["cond_stage_config"]]
    models = _params(model_params.get("conditioner_config")).get("emb_models") or []
    return [m for m in models if isinstance(m, dict) and "outdim" not in _params(m)
            and "Timestep" not in str(m.get("target", ""))]


def _text_encoder_heads(params):
    if "heads" in params:
        return int(params["heads"])
    if params.get("arch") in OPEN_CLIP_ARCH_HEADS:
        return OPEN_CLIP_ARCH_HEADS[params["arch"]]
    if params.get("version") in CLIP_VERSION_HEADS:
        return CLIP_VERSION_HEADS[params["version"]]
    return None


def overrides(data: dict, name="config") -> YamlOverrides:
    """What a parsed training config says about the things weights cannot show."""
    model_params = _params(data["model"])
    result = YamlOverrides()
    parameterization = model_params.get("parameterization")
    if parameterization is not None:
        if parameterization not in ("eps", "v"):
            raise ModelYamlError(f"{name}: parameterization {parameterization!r} is not supported (only 'eps' and 'v')")
        result.parameterization = parameterization
    if "scale_factor" in model_params:
        result.scale_factor = float(model_params["scale_factor"])

    unet_params = _params(model_params.get("unet_config") or model_params.get("network_config"))
    if unet_params.get("num_head_channels", -1) not in (-1, None):
        result.unet_heads = dict(num_head_channels=int(unet_params["num_head_channels"]), num_heads=-1)
    elif unet_params.get("num_heads", -1) not in (-1, None):
        result.unet_heads = dict(num_heads=int(unet_params["num_heads"]), num_head_channels=-1)

    for section in _text_encoder_sections(model_params):
        params = _params(section)
        layer = params.get("layer")
        if layer is not None and layer not in ("last", "penultimate", "hidden", "pooled"):
            raise ModelYamlError(f"{name}: text encoder layer {layer!r} is not supported (last, penultimate, hidden)")
        result.text_encoders.append(TextEncoderOverrides(
            heads=_text_encoder_heads(params), layer=layer,
            layer_idx=int(params["layer_idx"]) if params.get("layer_idx") is not None else None))
    return result
