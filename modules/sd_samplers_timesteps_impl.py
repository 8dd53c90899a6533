"""Samplers over discrete timesteps with a noise-prediction model: DDIM, DDIM CFG++, PLMS, UniPC
(A1111: modules.sd_samplers_timesteps_impl).

`model(x, t, **extra_args)` returns the guided noise prediction eps; `timesteps` ascend (e.g. 1, 51, ..., 951) and are
visited from the last to the first. Noise comes from `k_diffusion.sampling.torch.randn_like`, which the web UI routes
to each image's own generator.
"""
import numpy as np
import torch
import tqdm

import k_diffusion.sampling
from modules import shared
from modules.models.diffusion.uni_pc import uni_pc


def _alphas(model, timesteps, x):
    """(a_t, a_prev, sqrt(1 - a_t)) per position in `timesteps`; a_prev of the first position is a_0. Python lists:
    read from the device once per pass, so a step does not wait for the GPU to hand over its numbers (the values are
    those `.item()` gave per step)."""
    alphas_cumprod = model.inner_model.inner_model.alphas_cumprod
    prev_dtype = torch.float64 if x.device.type not in ('mps', 'xpu') else torch.float32
    alphas = alphas_cumprod[timesteps]
    alphas_prev = alphas_cumprod[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].to(prev_dtype)
    return alphas.tolist(), alphas_prev.tolist(), torch.sqrt(1 - alphas).tolist()


def _ddim_sigmas(alphas, alphas_prev, eta):
    a = np.asarray(alphas, dtype=np.float64)
    a_prev = np.asarray(alphas_prev, dtype=np.float64)
    return (eta * np.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))).tolist()


def _host_timesteps(timesteps):
    """The timesteps as Python numbers (one read from the device per pass instead of one per step)."""
    return timesteps.tolist() if torch.is_tensor(timesteps) else list(timesteps)


@torch.no_grad()
def ddim(model, x, timesteps, extra_args=None, callback=None, disable=None, eta=0.0):
    """DDIM (Song et al. 2020); eta=0 is deterministic, eta=1 is DDPM-like."""
    alphas, alphas_prev, sqrt_one_minus_alphas = _alphas(model, timesteps, x)
    sigmas = _ddim_sigmas(alphas, alphas_prev, eta)
    host_timesteps = _host_timesteps(timesteps)

    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones((x.shape[0]))
    s_x = x.new_ones((x.shape[0], 1, 1, 1))
    for i in tqdm.trange(len(timesteps) - 1, -1, -1, disable=disable):
        step = len(timesteps) - 1 - i

        e_t = model(x, host_timesteps[i] * s_in, **extra_args)

        a_t = alphas[i] * s_x
        a_prev = alphas_prev[i] * s_x
        sigma_t = sigmas[i] * s_x
        sqrt_one_minus_at = sqrt_one_minus_alphas[i] * s_x

        pred_x0 = (x - sqrt_one_minus_at * e_t) / a_t.sqrt()
        dir_xt = (1. - a_prev - sigma_t ** 2).sqrt() * e_t
        noise = sigma_t * k_diffusion.sampling.torch.randn_like(x)
        x = a_prev.sqrt() * pred_x0 + dir_xt + noise

        if callback is not None:
            callback({'x': x, 'i': step, 'sigma': 0, 'sigma_hat': 0, 'denoised': pred_x0})

    return x


@torch.no_grad()
def ddim_cfgpp(model, x, timesteps, extra_args=None, callback=None, disable=None, eta=0.0):
    """DDIM with CFG++ (Chung et al. 2024, "Manifold-constrained Classifier Free Guidance"): the direction term uses
    the unconditional noise prediction, and the CFG scale is divided by 12.5 (so 0..12.5 maps to 0..1)."""
    alphas, alphas_prev, sqrt_one_minus_alphas = _alphas(model, timesteps, x)
    sigmas = _ddim_sigmas(alphas, alphas_prev, eta)
    host_timesteps = _host_timesteps(timesteps)

    model.cond_scale_miltiplier = 1 / 12.5
    model.need_last_noise_uncond = True

    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones((x.shape[0]))
    s_x = x.new_ones((x.shape[0], 1, 1, 1))
    for i in tqdm.trange(len(timesteps) - 1, -1, -1, disable=disable):
        step = len(timesteps) - 1 - i

        e_t = model(x, host_timesteps[i] * s_in, **extra_args)
        last_noise_uncond = model.last_noise_uncond

        a_t = alphas[i] * s_x
        a_prev = alphas_prev[i] * s_x
        sigma_t = sigmas[i] * s_x
        sqrt_one_minus_at = sqrt_one_minus_alphas[i] * s_x

        pred_x0 = (x - sqrt_one_minus_at * e_t) / a_t.sqrt()
        dir_xt = (1. - a_prev - sigma_t ** 2).sqrt() * last_noise_uncond
        noise = sigma_t * k_diffusion.sampling.torch.randn_like(x)
        x = a_prev.sqrt() * pred_x0 + dir_xt + noise

        if callback is not None:
            callback({'x': x, 'i': step, 'sigma': 0, 'sigma_hat': 0, 'denoised': pred_x0})

    return x


@torch.no_grad()
def plms(model, x, timesteps, extra_args=None, callback=None, disable=None):
    """PLMS (Liu et al. 2022, pseudo linear multistep): Adams-Bashforth on eps, a pseudo improved Euler first step."""
    alphas, alphas_prev, sqrt_one_minus_alphas = _alphas(model, timesteps, x)
    host_timesteps = _host_timesteps(timesteps)

    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    s_x = x.new_ones((x.shape[0], 1, 1, 1))
    old_eps = []

    def get_x_prev_and_pred_x0(x, e_t, index):
        a_t = alphas[index] * s_x
        a_prev = alphas_prev[index] * s_x
        sqrt_one_minus_at = sqrt_one_minus_alphas[index] * s_x

        pred_x0 = (x - sqrt_one_minus_at * e_t) / a_t.sqrt()
        dir_xt = (1. - a_prev).sqrt() * e_t
        x_prev = a_prev.sqrt() * pred_x0 + dir_xt
        return x_prev, pred_x0

    for i in tqdm.trange(len(timesteps) - 1, -1, -1, disable=disable):
        step = len(timesteps) - 1 - i
        ts = host_timesteps[i] * s_in
        t_next = host_timesteps[max(i - 1, 0)] * s_in

        e_t = model(x, ts, **extra_args)

        if len(old_eps) == 0:
            # pseudo improved Euler (2nd order)
            x_prev, pred_x0 = get_x_prev_and_pred_x0(x, e_t, i)
            e_t_next = model(x_prev, t_next, **extra_args)
            e_t_prime = (e_t + e_t_next) / 2
        elif len(old_eps) == 1:
            e_t_prime = (3 * e_t - old_eps[-1]) / 2
        elif len(old_eps) == 2:
            e_t_prime = (23 * e_t - 16 * old_eps[-1] + 5 * old_eps[-2]) / 12
        else:
            e_t_prime = (55 * e_t - 59 * old_eps[-1] + 37 * old_eps[-2] - 9 * old_eps[-3]) / 24

        x_prev, pred_x0 = get_x_prev_and_pred_x0(x, e_t_prime, i)

        old_eps.append(e_t)
        if len(old_eps) >= 4:
            old_eps.pop(0)

        x = x_prev

        if callback is not None:
            callback({'x': x, 'i': step, 'sigma': 0, 'sigma_hat': 0, 'denoised': pred_x0})

    return x


class UniPCCFG(uni_pc.UniPC):
    """UniPC over the web UI's CFG denoiser: continuous UniPC time -> model timestep, progress per step."""

    def __init__(self, cfg_model, extra_args, callback, *args, **kwargs):
        super().__init__(None, *args, **kwargs)

        def after_update(x, model_x):
            if callback is not None:
                callback({'x': x, 'i': self.index, 'sigma': 0, 'sigma_hat': 0, 'denoised': model_x})
            self.index += 1

        self.cfg_model = cfg_model
        self.extra_args = extra_args
        self.callback = callback
        self.index = 0
        self.after_update = after_update

    def get_model_input_time(self, t_continuous):
        return (t_continuous - 1. / self.noise_schedule.total_N) * 1000.

    def model(self, x, t):
        t_input = self.get_model_input_time(t)
        return self.cfg_model(x, t_input.expand(x.shape[0]).to(x.device), **self.extra_args)


@torch.no_grad()
def unipc(model, x, timesteps, extra_args=None, callback=None, disable=None, is_img2img=False):
    """UniPC with the settings uni_pc_variant / uni_pc_skip_type / uni_pc_order / uni_pc_lower_order_final."""
    alphas_cumprod = model.inner_model.inner_model.alphas_cumprod

    ns = uni_pc.NoiseScheduleVP('discrete', alphas_cumprod=alphas_cumprod)
    # img2img starts at the last scheduled timestep, in UniPC's continuous time (model time t = 1000 * t_c - 1)
    t_start = timesteps[-1].item() / 1000 + 1 / 1000 if is_img2img else None
    unipc_sampler = UniPCCFG(model, extra_args, callback, ns, predict_x0=True, thresholding=False, variant=shared.opts.uni_pc_variant)
    x = unipc_sampler.sample(x, steps=len(timesteps), t_start=t_start, skip_type=shared.opts.uni_pc_skip_type, method="multistep", order=shared.opts.uni_pc_order, lower_order_final=shared.opts.uni_pc_lower_order_final)

    return x
