"""Builds the whole model for a detected config (modules.model_detection), on the meta device by default so that
no memory is used until the checkpoint's tensors are assigned.

SD1/SD2 are ldm's LatentDiffusion with one text encoder under `cond_stage_model`; SDXL and its refiner are sgm's
DiffusionEngine with a GeneralConditioner whose embedders are the text encoders followed by the size/crop/score
embedders, in the checkpoint's order.
"""
import torch

from ldm.models.diffusion.ddpm import LatentDiffusion
from ldm.modules.encoders.modules import FrozenCLIPEmbedder, FrozenOpenCLIPEmbedder, sd1_clip_config
from ldm.modules.encoders.open_clip_text import OpenCLIPTextConfig
from modules.model_detection import ModelConfig, TextEncoderConfig
from sgm.models.diffusion import DiffusionEngine
from sgm.modules.encoders import modules as sgm_encoders


def clip_text_config(te: TextEncoderConfig):
    return sd1_clip_config(hidden_size=te.width, num_hidden_layers=te.layers, intermediate_size=te.mlp_width,
                           vocab_size=te.vocab_size, max_position_embeddings=te.context_length, num_attention_heads=te.heads)


def open_clip_text_config(te: TextEncoderConfig):
    return OpenCLIPTextConfig(width=te.width, layers=te.layers, heads=te.heads, mlp_width=te.mlp_width,
                              context_length=te.context_length, vocab_size=te.vocab_size, embed_dim=te.embed_dim)


def _layer_args(te: TextEncoderConfig):
    """(layer, layer_idx) in the embedders' terms: "last", "penultimate", or "hidden" with a hidden-state index."""
    if te.layer in ("last", "penultimate") and te.layer_idx is None:
        return te.layer, None
    return "hidden", te.hidden_state_index


def build_text_encoder(te: TextEncoderConfig, for_sdxl: bool):
    layer, layer_idx = _layer_args(te)
    if te.spec.kind == "clip":
        if for_sdxl:
            return sgm_encoders.FrozenCLIPEmbedder(layer="hidden", layer_idx=te.hidden_state_index, config=clip_text_config(te))
        return FrozenCLIPEmbedder(layer="hidden" if layer != "last" else "last", layer_idx=te.hidden_state_index,
                                  config=clip_text_config(te))
    if for_sdxl:
        return sgm_encoders.FrozenOpenCLIPEmbedder2(layer=layer, layer_idx=layer_idx, always_return_pooled=te.spec.pooled,
                                                    config=open_clip_text_config(te))
    return FrozenOpenCLIPEmbedder(layer=layer, layer_idx=layer_idx, final_layer_norm=te.spec.final_layer_norm,
                                  config=open_clip_text_config(te))


def build_conditioner(config: ModelConfig):
    embedders = [build_text_encoder(te, for_sdxl=True) for te in config.text_encoders]
    embedders += [sgm_encoders.ConcatTimestepEmbedderND(outdim=config.vector_embed_dim, input_key=key)
                  for key in config.family.vector_inputs]
    return sgm_encoders.GeneralConditioner(embedders=embedders)


def build_model(config: ModelConfig, device="meta"):
    """The family's model object for `config`, built on `device`, with its family flags set."""
    with torch.device(device):
        if config.family.architecture == "sgm":
            model = DiffusionEngine(network_config=config.unet, first_stage_config=config.vae,
                                    conditioner=build_conditioner(config), scale_factor=config.scale_factor,
                                    parameterization=config.parameterization)
        else:
            model = LatentDiffusion(unet_config=config.unet, first_stage_config=config.vae,
                                    cond_stage_model=build_text_encoder(config.text_encoders[0], for_sdxl=False),
                                    conditioning_key=config.conditioning_key, parameterization=config.parameterization,
                                    scale_factor=config.scale_factor)
    if config.variant == "instruct-pix2pix":
        model.cond_stage_key = "edit"  # how A1111 tells an instruct-pix2pix model
    model.set_family(config.family, config)
    return model
