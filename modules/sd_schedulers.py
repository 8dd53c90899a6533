"""Schedule types: functions returning the sigmas a k-diffusion sampler steps through (A1111: modules.sd_schedulers).

Each function returns n+1 descending sigmas ending with 0 (KL Optimal ends at sigma_min instead, as upstream).
Functions that need the model's discrete schedule get `inner_model` (a k_diffusion.external denoiser).
"""
import dataclasses

import numpy as np
import torch

import k_diffusion.sampling


@dataclasses.dataclass
class Scheduler:
    name: str
    label: str
    function: object

    default_rho: float = -1
    need_inner_model: bool = False
    aliases: list = None


def uniform(n, sigma_min, sigma_max, inner_model, device):
    """Timesteps evenly spaced from 999 to 0."""
    return inner_model.get_sigmas(n).to(device)


def sgm_uniform(n, sigma_min, sigma_max, inner_model, device):
    """Timesteps evenly spaced from sigma_max's to sigma_min's, the last one dropped (SGM / SDXL style)."""
    start = inner_model.sigma_to_t(torch.tensor(sigma_max))
    end = inner_model.sigma_to_t(torch.tensor(sigma_min))
    sigs = [inner_model.t_to_sigma(ts) for ts in torch.linspace(start, end, n + 1)[:-1]]
    sigs += [0.0]
    return torch.FloatTensor(sigs).to(device)


def _sdxl_model_default():
    from modules import shared
    return bool(getattr(shared.sd_model, "is_sdxl", False))


ays_sigmas_sd15 = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
ays_sigmas_sdxl = [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029]


def get_align_your_steps_sigmas(n, sigma_min, sigma_max, device, is_sdxl=None):
    """NVIDIA's Align Your Steps 10-step schedules, log-linearly resampled to n steps."""
    if is_sdxl is None:
        is_sdxl = _sdxl_model_default()
    sigmas = list(ays_sigmas_sdxl if is_sdxl else ays_sigmas_sd15)

    if n != len(sigmas):
        xs = np.linspace(0, 1, len(sigmas))
        ys = np.log(sigmas[::-1])
        new_ys = np.interp(np.linspace(0, 1, n), xs, ys)
        sigmas = np.append(np.exp(new_ys)[::-1].copy(), [0.0])
    else:
        sigmas.append(0.0)

    return torch.FloatTensor(sigmas).to(device)


def kl_optimal(n, sigma_min, sigma_max, device):
    """The KL-optimal schedule: evenly spaced in arctan(sigma). n+1 values from sigma_max to sigma_min, no 0."""
    alpha_min = torch.arctan(torch.tensor(sigma_min, device=device))
    alpha_max = torch.arctan(torch.tensor(sigma_max, device=device))
    step_indices = torch.arange(n + 1, device=device)
    sigmas = torch.tan(step_indices / n * alpha_min + (1.0 - step_indices / n) * alpha_max)
    return sigmas


def simple_scheduler(n, sigma_min, sigma_max, inner_model, device):
    """Every (1000/n)-th of the model's discrete sigmas, from the top."""
    sigs = []
    ss = len(inner_model.sigmas) / n
    for x in range(n):
        sigs += [float(inner_model.sigmas[-(1 + int(x * ss))])]
    sigs += [0.0]
    return torch.FloatTensor(sigs).to(device)


def normal_scheduler(n, sigma_min, sigma_max, inner_model, device, sgm=False, floor=False):
    """Timesteps evenly spaced from sigma_max's to sigma_min's (both included)."""
    start = inner_model.sigma_to_t(torch.tensor(sigma_max))
    end = inner_model.sigma_to_t(torch.tensor(sigma_min))

    if sgm:
        timesteps = torch.linspace(start, end, n + 1)[:-1]
    else:
        timesteps = torch.linspace(start, end, n)

    sigs = [float(inner_model.t_to_sigma(ts)) for ts in timesteps]
    sigs += [0.0]
    return torch.FloatTensor(sigs).to(device)


def ddim_scheduler(n, sigma_min, sigma_max, inner_model, device):
    """The discrete sigmas DDIM visits: every (1000//n)-th starting at timestep 1."""
    sigs = []
    ss = max(len(inner_model.sigmas) // n, 1)
    x = 1
    while x < len(inner_model.sigmas):
        sigs += [float(inner_model.sigmas[x])]
        x += ss
    sigs = sigs[::-1]
    sigs += [0.0]
    return torch.FloatTensor(sigs).to(device)


def beta_scheduler(n, sigma_min, sigma_max, inner_model, device, alpha=None, beta=None):
    """"Beta Sampling is All You Need" (Lee et al. 2024): beta-distribution quantiles mapped onto [sigma_min, sigma_max]."""
    from scipy import stats

    from modules import shared
    alpha = shared.opts.beta_dist_alpha if alpha is None else alpha
    beta = shared.opts.beta_dist_beta if beta is None else beta

    timesteps = 1 - np.linspace(0, 1, n)
    timesteps = [stats.beta.ppf(x, alpha, beta) for x in timesteps]
    sigmas = [sigma_min + (x * (sigma_max - sigma_min)) for x in timesteps]
    sigmas += [0.0]
    return torch.FloatTensor(sigmas).to(device)


schedulers = [
    Scheduler('automatic', 'Automatic', None),
    Scheduler('uniform', 'Uniform', uniform, need_inner_model=True),
    Scheduler('karras', 'Karras', k_diffusion.sampling.get_sigmas_karras, default_rho=7.0),
    Scheduler('exponential', 'Exponential', k_diffusion.sampling.get_sigmas_exponential),
    Scheduler('polyexponential', 'Polyexponential', k_diffusion.sampling.get_sigmas_polyexponential, default_rho=1.0),
    Scheduler('sgm_uniform', 'SGM Uniform', sgm_uniform, need_inner_model=True, aliases=["SGMUniform"]),
    Scheduler('kl_optimal', 'KL Optimal', kl_optimal),
    Scheduler('align_your_steps', 'Align Your Steps', get_align_your_steps_sigmas),
    Scheduler('simple', 'Simple', simple_scheduler, need_inner_model=True),
    Scheduler('normal', 'Normal', normal_scheduler, need_inner_model=True),
    Scheduler('ddim', 'DDIM', ddim_scheduler, need_inner_model=True),
    Scheduler('beta', 'Beta', beta_scheduler, need_inner_model=True),
]

schedulers_map = {**{x.name: x for x in schedulers}, **{x.label: x for x in schedulers}}


def find_scheduler(name):
    """The Scheduler for a name, label or alias (any case); None/"" is Automatic; anything else raises ValueError."""
    if name is None or (isinstance(name, str) and name.strip() == ""):
        return schedulers[0]
    if isinstance(name, Scheduler):
        return name

    key = str(name).strip()
    if key in schedulers_map:
        return schedulers_map[key]
    for scheduler in schedulers:
        if key.lower() in (scheduler.name.lower(), scheduler.label.lower(), *(a.lower() for a in scheduler.aliases or [])):
            return scheduler

    valid = ", ".join(x.label for x in schedulers)
    raise ValueError(f"Unknown schedule type {name!r}; valid schedule types: {valid}")

