"""LCM sampling (latent consistency models, LCM-LoRA): k_diffusion.sampling.sample_lcm over a denoiser with LCM's
50-timestep skipping schedule and consistency-model boundary scalings (A1111: modules.sd_samplers_lcm)."""
import torch

import k_diffusion.sampling
from k_diffusion import utils
from k_diffusion.external import DiscreteEpsDDPMDenoiser
from modules import sd_samplers_cfg_denoiser, sd_samplers_common, sd_samplers_kdiffusion

sample_lcm = k_diffusion.sampling.sample_lcm


class LCMCompVisDenoiser(DiscreteEpsDDPMDenoiser):
    """The 1000-step model seen through LCM's 50 "original" timesteps (every 20th, ending at 999)."""

    def __init__(self, model):
        timesteps = 1000
        original_timesteps = 50
        self.skip_steps = timesteps // original_timesteps

        alphas_cumprod = model.alphas_cumprod
        alphas_cumprod_valid = torch.zeros((original_timesteps), dtype=torch.float32, device=alphas_cumprod.device)
        for x in range(original_timesteps):
            alphas_cumprod_valid[original_timesteps - 1 - x] = alphas_cumprod[timesteps - 1 - x * self.skip_steps]

        super().__init__(model, alphas_cumprod_valid, quantize=None)

    def get_sigmas(self, n=None):
        if n is None:
            return k_diffusion.sampling.append_zero(self.sigmas.flip(0))

        start = self.sigma_to_t(self.sigma_max)
        end = self.sigma_to_t(self.sigma_min)

        t = torch.linspace(start, end, n, device=self.sigmas.device)

        return k_diffusion.sampling.append_zero(self.t_to_sigma(t))

    def sigma_to_t(self, sigma, quantize=None):
        sigma = torch.as_tensor(sigma, device=self.log_sigmas.device)
        log_sigma = sigma.log()
        dists = log_sigma - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape) * self.skip_steps + (self.skip_steps - 1)

    def t_to_sigma(self, timestep):
        t = torch.clamp(((torch.as_tensor(timestep) - (self.skip_steps - 1)) / self.skip_steps).float(), min=0, max=(len(self.sigmas) - 1))
        return super().t_to_sigma(t)

    def get_eps(self, *args, **kwargs):
        return self.inner_model.apply_model(*args, **kwargs)

    def get_scaled_out(self, sigma, output, input):
        """Consistency-model boundary condition: c_skip * x + c_out * x0, with the timestep scaled by 10."""
        sigma_data = 0.5
        scaled_timestep = utils.append_dims(self.sigma_to_t(sigma), output.ndim) * 10.0

        c_skip = sigma_data ** 2 / (scaled_timestep ** 2 + sigma_data ** 2)
        c_out = scaled_timestep / (scaled_timestep ** 2 + sigma_data ** 2) ** 0.5

        return c_out * output + c_skip * input

    def forward(self, input, sigma, **kwargs):
        c_out, c_in = [utils.append_dims(x, input.ndim) for x in self.get_scalings(sigma)]
        eps = self.get_eps(input * c_in, self.sigma_to_t(sigma), **kwargs)
        return self.get_scaled_out(sigma, input + eps * c_out, input)


class CFGDenoiserLCM(sd_samplers_cfg_denoiser.CFGDenoiser):
    @property
    def inner_model(self):
        if self.model_wrap is None:
            self.model_wrap = LCMCompVisDenoiser(self.sd_model)

        return self.model_wrap


class LCMSampler(sd_samplers_kdiffusion.KDiffusionSampler):
    def __init__(self, funcname, sd_model, options=None):
        super().__init__(funcname, sd_model, options)
        self.model_wrap_cfg = CFGDenoiserLCM(self)
        self.model_wrap = self.model_wrap_cfg.inner_model


samplers_lcm = [('LCM', sample_lcm, ['k_lcm'], {})]


def _constructor(funcname):
    return lambda model: LCMSampler(funcname, model)


samplers_data_lcm = [
    sd_samplers_common.SamplerData(label, _constructor(funcname), aliases, options)
    for label, funcname, aliases, options in samplers_lcm
]
