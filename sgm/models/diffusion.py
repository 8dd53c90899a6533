"""SDXL's whole model (original path: sgm.models.diffusion.DiffusionEngine): UNet + VAE + conditioner.

Checkpoint prefixes: `model.diffusion_model.` (the UNet), `first_stage_model.`, `conditioner.embedders.N.`.
Conditioning is a dict: {"crossattn": text states, "vector": pooled text + size embeddings} (plus "c_concat" for
9-channel inpainting and 8-channel instruct-pix2pix UNets). SDXL's schedule is SD1's ("legacy DDPM" discretization).
"""
import torch
from torch import nn

from ldm.models.autoencoder import AutoencoderKL
from ldm.models.diffusion.ddpm import DiffusionModelBase
from ldm.modules.diffusionmodules.openaimodel import UNetModel
from modules import model_families, sd_models_xl


class OpenAIWrapper(nn.Module):
    """Hands SDXL's conditioning dict to the UNet: concat channels, cross-attention context and the vector y."""

    def __init__(self, diffusion_model):
        super().__init__()
        self.diffusion_model = diffusion_model
        self.conditioning_key = "crossattn"

    def forward(self, x, t, c: dict, **kwargs):
        concat = c.get("concat")
        if concat is not None:
            x = torch.cat((x, concat.to(x)), dim=1)
        return self.diffusion_model(x, timesteps=t, context=c.get("crossattn"), y=c.get("vector"), **kwargs)


class DiffusionEngine(DiffusionModelBase):
    def __init__(self, network_config=None, first_stage_config=None, conditioner=None,
                 scale_factor=model_families.SDXL.latent.scale_factor, parameterization="eps", unet=None,
                 first_stage_model=None, **ignored):
        super().__init__(scale_factor=scale_factor, parameterization=parameterization)
        self.model = OpenAIWrapper(unet if unet is not None else UNetModel(**network_config))
        self.first_stage_model = first_stage_model if first_stage_model is not None else AutoencoderKL(**first_stage_config)
        self.conditioner = conditioner
        self.cond_stage_key = "txt"
        self.set_family(model_families.SDXL)  # the loader sets the detected family

    @property
    def cond_stage_model(self):
        """What A1111 code reads as the text encoder: the conditioner, or (refiner) its only text encoder, as the
        hijack sets it. Not a submodule of its own: its weights are the conditioner's (no second set of keys)."""
        return self.__dict__.get("_cond_stage_model") or self.conditioner

    def __setattr__(self, name, value):
        if name == "cond_stage_model":
            self.__dict__["_cond_stage_model"] = value
            return
        super().__setattr__(name, value)

    def get_learned_conditioning(self, batch):
        return sd_models_xl.get_learned_conditioning(self, batch)

    def apply_model(self, x, t, cond):
        """cond: {"crossattn", "vector"[, "c_concat": [latents]]} -> the UNet's prediction."""
        if self.model.diffusion_model.in_channels != x.shape[1]:
            concat = cond.get("c_concat")
            if not concat:
                raise ValueError(f"this SDXL UNet takes {self.model.diffusion_model.in_channels} input channels: it needs "
                                 "image conditioning (c_concat)")
            x = torch.cat([x] + [c.to(x) for c in concat], dim=1)
        return self.model(x, t, {k: v for k, v in cond.items() if k in ("crossattn", "vector")})

    # ---- the VAE (sgm's convention: encode_first_stage returns scaled latents) ------------------------------------
    def encode_first_stage(self, x):
        posterior = self.first_stage_model.encode(x.to(self.first_stage_model.dtype))
        return self.scale_factor * posterior.sample()

    def get_first_stage_encoding(self, x):
        return x  # encode_first_stage already did everything
