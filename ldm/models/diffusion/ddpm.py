"""The whole SD model (original path: ldm.models.diffusion.ddpm): UNet + VAE + text encoder + noise schedule.

Inference only. Checkpoint prefixes: `model.diffusion_model.` (UNet inside DiffusionWrapper), `first_stage_model.`,
`cond_stage_model.`; the schedule buffers (`betas`, `alphas_cumprod`, ...) sit at the top level.
"""
import numpy as np
import torch
from torch import nn

from ldm.models.autoencoder import AutoencoderKL
from ldm.modules.diffusionmodules.openaimodel import UNetModel
from ldm.modules.distributions.distributions import DiagonalGaussianDistribution
from ldm.modules.encoders.modules import FrozenCLIPEmbedder
from modules import model_families


def make_beta_schedule(schedule, n_timestep, linear_start=1e-4, linear_end=2e-2, cosine_s=8e-3):
    """SD's "linear" schedule is linear in sqrt(beta): beta = linspace(sqrt(start), sqrt(end), n)^2, in float64."""
    if schedule == "linear":
        return (torch.linspace(linear_start ** 0.5, linear_end ** 0.5, n_timestep, dtype=torch.float64, device="cpu") ** 2).numpy()
    if schedule == "scaled_linear":
        return np.linspace(linear_start, linear_end, n_timestep, dtype=np.float64)
    if schedule == "sqrt_linear":
        return torch.linspace(linear_start, linear_end, n_timestep, dtype=torch.float64, device="cpu").numpy()
    if schedule == "sqrt":
        return (torch.linspace(linear_start, linear_end, n_timestep, dtype=torch.float64, device="cpu") ** 0.5).numpy()
    raise ValueError(f"schedule '{schedule}' unknown.")


class DiffusionWrapper(nn.Module):
    """Routes the conditioning to the UNet: cross-attention context, and for "hybrid" also channels concatenated to x."""

    def __init__(self, diff_model_config=None, conditioning_key="crossattn", diffusion_model=None):
        super().__init__()
        self.diffusion_model = diffusion_model if diffusion_model is not None else UNetModel(**(diff_model_config or {}))
        self.conditioning_key = conditioning_key
        if conditioning_key not in (None, "concat", "crossattn", "hybrid", "adm"):
            raise ValueError(f"unknown conditioning_key {conditioning_key!r}")

    def forward(self, x, t, c_concat: list = None, c_crossattn: list = None, c_adm=None):
        key = self.conditioning_key
        if key is None:
            return self.diffusion_model(x, t)
        if key == "concat":
            return self.diffusion_model(torch.cat([x] + list(c_concat), dim=1), t)
        if key == "crossattn":
            return self.diffusion_model(x, t, context=torch.cat(c_crossattn, 1))
        if key == "hybrid":
            if not c_concat:
                raise ValueError("this is an inpainting model (9 input channels): it needs image conditioning (c_concat: mask + masked-image latent)")
            xc = torch.cat([x] + list(c_concat), dim=1)
            return self.diffusion_model(xc, t, context=torch.cat(c_crossattn, 1))
        return self.diffusion_model(x, t, y=c_adm)


class DiffusionModelBase(nn.Module):
    """What every family's whole model shares: the noise schedule, the VAE, the flags extensions read
    (`is_sd1`, `is_sd2`, `is_sdxl`, ...) and the family it was built as (modules.model_families)."""

    SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                        "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                        "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                        "posterior_mean_coef1", "posterior_mean_coef2")

    def __init__(self, scale_factor=model_families.SD1.latent.scale_factor, timesteps=1000, linear_start=0.00085,
                 linear_end=0.0120, beta_schedule="linear", parameterization="eps"):
        super().__init__()
        self.parameterization = parameterization
        self.scale_factor = scale_factor
        self.use_ema = False
        self.latent_channels = 4
        self.is_sd1, self.is_sd2, self.is_sdxl, self.is_sd3 = True, False, False, False
        self.is_ssd = False
        self.is_sdxl_inpaint = False
        self.ztsnr = False          # the file asks for zero-terminal-SNR sampling (SDXL "ztsnr" marker)
        self.family = None          # modules.model_families.ModelFamily, set by the loader
        self.model_config = None    # modules.model_detection.ModelConfig, set by the loader
        self.lowvram = False
        self.run_device = None  # set by --medvram/--lowvram (modules.lowvram): the GPU, while weights rest in RAM
        self.sd_checkpoint_info = None
        self.sd_model_hash = None
        self.sd_model_checkpoint = None
        self.beta_schedule = beta_schedule
        self.register_schedule(beta_schedule=beta_schedule, timesteps=timesteps, linear_start=linear_start, linear_end=linear_end)

    def set_family(self, family, model_config=None):
        """Record the family and set the flags extensions test (A1111's names)."""
        self.family = family
        self.model_config = model_config
        self.is_sd1 = family.name == "sd1"
        self.is_sd2 = family.name == "sd2"
        self.is_sdxl = family.is_sdxl
        self.is_sdxl_inpaint = family.is_sdxl and model_config is not None and model_config.variant == "inpainting"
        self.latent_channels = family.latent.channels

    @property
    def variant(self):
        """"base", "inpainting" (9 UNet input channels) or "instruct-pix2pix" (8)."""
        if self.model_config is not None:
            return self.model_config.variant
        return "inpainting" if self.model.conditioning_key in ("hybrid", "concat") else "base"

    @property
    def latent_format(self):
        return self.family.latent

    @property
    def default_size(self):
        """The width (= height) the model was trained at: SD1 512, SD2 512 (768 for v-prediction), SDXL 1024."""
        if self.parameterization == "v" and self.family.v_prediction_default_size:
            return self.family.v_prediction_default_size
        return self.family.default_size

    # ---- noise schedule -------------------------------------------------------------------------------------------
    def register_schedule(self, beta_schedule="linear", timesteps=1000, linear_start=0.00085, linear_end=0.0120,
                          alphas_cumprod=None):
        """The schedule's buffers, computed in float64 and stored in float32 (always on the CPU, never on meta)."""
        if alphas_cumprod is None:
            betas = make_beta_schedule(beta_schedule, timesteps, linear_start=linear_start, linear_end=linear_end)
            alphas_cumprod = np.cumprod(1.0 - betas, axis=0)
        else:
            alphas_cumprod = np.asarray(alphas_cumprod, dtype=np.float64)
            betas = 1.0 - alphas_cumprod / np.append(1.0, alphas_cumprod[:-1])
        alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
        self.num_timesteps = int(betas.shape[0])
        self.linear_start, self.linear_end = linear_start, linear_end
        self.v_posterior = 0.0
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        values = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
            "log_one_minus_alphas_cumprod": np.log(1.0 - alphas_cumprod),
            "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
            "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1),
            "posterior_variance": posterior_variance,
            "posterior_log_variance_clipped": np.log(np.maximum(posterior_variance, 1e-20)),
            "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
            "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * np.sqrt(1.0 - betas) / (1.0 - alphas_cumprod),
        }
        for name, value in values.items():
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32, device="cpu"), persistent=False)
        self.alphas_cumprod_original = self.alphas_cumprod

    def load_schedule(self, state_dict):
        """Take the schedule a checkpoint stores: alphas_cumprod defines it, and each stored buffer is used exactly
        as stored (the original code computed them in float64 and saved float32 values)."""
        alphas = state_dict.get("alphas_cumprod")
        if alphas is None or alphas.shape != (self.num_timesteps,):
            return
        self.register_schedule(alphas_cumprod=alphas.double().cpu().numpy(), linear_start=self.linear_start, linear_end=self.linear_end)
        for name in self.SCHEDULE_BUFFERS:
            stored = state_dict.get(name)
            if stored is not None and stored.shape == getattr(self, name).shape:
                setattr(self, name, stored.detach().to(device="cpu", dtype=torch.float32).clone())
        self.alphas_cumprod_original = self.alphas_cumprod

    # ---- properties extensions read --------------------------------------------------------------------------------
    @property
    def device(self):
        if self.run_device is not None:
            return self.run_device
        return next(self.model.diffusion_model.parameters()).device

    @property
    def dtype(self):
        return next(self.model.diffusion_model.parameters()).dtype

    # ---- conversions samplers use ------------------------------------------------------------------------------------
    def q_sample(self, x_start, t, noise=None):
        noise = torch.randn_like(x_start) if noise is None else noise
        a = self.sqrt_alphas_cumprod.to(x_start.device)[t].view(-1, *([1] * (x_start.ndim - 1)))
        s = self.sqrt_one_minus_alphas_cumprod.to(x_start.device)[t].view(-1, *([1] * (x_start.ndim - 1)))
        return a.to(x_start.dtype) * x_start + s.to(x_start.dtype) * noise

    def decode_first_stage(self, z, predict_cids=False, force_not_quantize=False):
        # in the VAE's dtype (fp32 with --no-half-vae while the UNet is half)
        return self.first_stage_model.decode((z / self.scale_factor).to(self.first_stage_model.dtype))


class LatentDiffusion(DiffusionModelBase):
    """SD1/SD2 latent diffusion: `apply_model` runs the UNet on latents; the VAE maps images <-> latents."""

    def __init__(self, unet_config=None, first_stage_config=None, cond_stage_config=None, conditioning_key="crossattn",
                 scale_factor=model_families.SD1.latent.scale_factor, timesteps=1000, linear_start=0.00085,
                 linear_end=0.0120, beta_schedule="linear", parameterization="eps", cond_stage_key="txt", first_stage_key="jpg",
                 unet=None, first_stage_model=None, cond_stage_model=None, **ignored):
        super().__init__(scale_factor=scale_factor, timesteps=timesteps, linear_start=linear_start,
                         linear_end=linear_end, beta_schedule=beta_schedule, parameterization=parameterization)
        self.cond_stage_key = cond_stage_key
        self.first_stage_key = first_stage_key
        self.model = DiffusionWrapper(unet_config, conditioning_key, diffusion_model=unet)
        self.first_stage_model = first_stage_model if first_stage_model is not None else AutoencoderKL(**first_stage_config)
        self.cond_stage_model = cond_stage_model if cond_stage_model is not None else FrozenCLIPEmbedder(**(cond_stage_config or {}))
        self.cond_stage_forward = None
        self.set_family(model_families.SD1)  # the loader sets the detected family

    # ---- conditioning and the UNet --------------------------------------------------------------------------------
    def get_learned_conditioning(self, c):
        if self.cond_stage_forward is not None:
            return getattr(self.cond_stage_model, self.cond_stage_forward)(c)
        if hasattr(self.cond_stage_model, "encode") and callable(self.cond_stage_model.encode):
            c = self.cond_stage_model.encode(c)
            return c.mode() if isinstance(c, DiagonalGaussianDistribution) else c
        return self.cond_stage_model(c)

    def apply_model(self, x_noisy, t, cond, return_ids=False):
        """The UNet's prediction for latents x_noisy at timesteps t; cond is a tensor or {"c_crossattn": [...], "c_concat": [...]}."""
        if not isinstance(cond, dict):
            if not isinstance(cond, list):
                cond = [cond]
            key = "c_concat" if self.model.conditioning_key == "concat" else "c_crossattn"
            cond = {key: cond}
        else:
            cond = {k: (v if isinstance(v, list) else [v]) for k, v in cond.items()}
        if self.model.conditioning_key == "crossattn":
            cond.pop("c_concat", None)  # image conditioning is meaningless to a 4-channel UNet
        x_recon = self.model(x_noisy, t, **cond)
        return x_recon[0] if isinstance(x_recon, tuple) and not return_ids else x_recon

    # ---- the VAE -------------------------------------------------------------------------------------------------------
    def encode_first_stage(self, x):
        return self.first_stage_model.encode(x.to(self.first_stage_model.dtype))

    def get_first_stage_encoding(self, encoder_posterior):
        if isinstance(encoder_posterior, DiagonalGaussianDistribution):
            z = encoder_posterior.sample()
        elif isinstance(encoder_posterior, torch.Tensor):
            z = encoder_posterior
        else:
            raise NotImplementedError(f"encoder_posterior of type '{type(encoder_posterior)}' not yet implemented")
        return self.scale_factor * z
