"""Samplers beyond k-diffusion's own set: Restart (A1111: modules.sd_samplers_extra)."""
import torch
import tqdm

import k_diffusion.sampling


def _restart_plan(sigmas, restart_list):
    """The (sigma_from, sigma_to) steps to take: the main schedule with restart segments inserted after some steps.

    restart_list maps a sigma where a restart happens to [restart_steps, restart_times, max_sigma].
    """
    restart_at = {int(torch.argmin(abs(sigmas - key), dim=0)): value for key, value in restart_list.items()}

    step_list = []
    for i in range(len(sigmas) - 1):
        step_list.append((sigmas[i], sigmas[i + 1]))
        if i + 1 not in restart_at:
            continue

        restart_steps, restart_times, restart_max = restart_at[i + 1]
        min_idx = i + 1
        max_idx = int(torch.argmin(abs(sigmas - restart_max), dim=0))
        if max_idx >= min_idx:
            continue

        sigma_restart = k_diffusion.sampling.get_sigmas_karras(restart_steps, sigmas[min_idx].item(), sigmas[max_idx].item(), device=sigmas.device)[:-1]
        for _ in range(restart_times):
            step_list.extend(zip(sigma_restart[:-1], sigma_restart[1:]))

    return step_list


@torch.no_grad()
def restart_sampler(model, x, sigmas, extra_args=None, callback=None, disable=None, s_noise=1., restart_list=None):
    """Restart sampling (Xu et al. 2023, "Restart Sampling for Improving Generative Processes"): Heun steps along the
    schedule, and at some point re-noise back up to a higher sigma and integrate down again.

    restart_list: {min_sigma: [restart_steps, restart_times, max_sigma]}; None picks one from the step count.
    """
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    step_id = 0

    def heun_step(x, old_sigma, new_sigma, second_order=True):
        nonlocal step_id
        denoised = model(x, old_sigma * s_in, **extra_args)
        d = k_diffusion.sampling.to_d(x, old_sigma, denoised)
        if callback is not None:
            callback({'x': x, 'i': step_id, 'sigma': new_sigma, 'sigma_hat': old_sigma, 'denoised': denoised})
        dt = new_sigma - old_sigma
        if new_sigma == 0 or not second_order:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            denoised_2 = model(x_2, new_sigma * s_in, **extra_args)
            d_2 = k_diffusion.sampling.to_d(x_2, new_sigma, denoised_2)
            x = x + (d + d_2) / 2 * dt
        step_id += 1
        return x

    steps = sigmas.shape[0] - 1
    if restart_list is None:
        if steps >= 20:
            restart_steps = 9
            restart_times = 1
            if steps >= 36:
                restart_steps = steps // 4
                restart_times = 2
            # keep the total number of steps: the main schedule gives up the steps the restarts take
            sigmas = k_diffusion.sampling.get_sigmas_karras(steps - restart_steps * restart_times, sigmas[-2].item(), sigmas[0].item(), device=sigmas.device)
            restart_list = {0.1: [restart_steps + 1, restart_times, 2]}
        else:
            restart_list = {}

    last_sigma = None
    for old_sigma, new_sigma in tqdm.tqdm(_restart_plan(sigmas, restart_list), disable=disable):
        if last_sigma is None:
            last_sigma = old_sigma
        elif last_sigma < old_sigma:
            # a restart: add noise to go back up from last_sigma to old_sigma
            x = x + k_diffusion.sampling.torch.randn_like(x) * s_noise * (old_sigma ** 2 - last_sigma ** 2) ** 0.5
        x = heun_step(x, old_sigma, new_sigma)
        last_sigma = new_sigma

    return x
