"""What every sampler shares: the registry entry type, img2img step math, progress/interrupt plumbing, the base
Sampler class and latent<->image helpers (A1111: modules.sd_samplers_common)."""
import inspect
import time
from collections import namedtuple

import torch

import k_diffusion.sampling
from modules import devices, sd_models, shared
from modules.shared import opts, state
# A1111 defines the latent<->image helpers here; the one copy lives in modules.latent_codec.
from modules.latent_codec import (  # noqa: F401
    approximation_indexes, decode_first_stage, images_tensor_to_samples, sample_to_image, samples_to_image_grid,
    samples_to_images_tensor, single_sample_to_image,
)

SamplerDataTuple = namedtuple('SamplerData', ['name', 'constructor', 'aliases', 'options'])


class SamplerData(SamplerDataTuple):
    """A registry entry: UI name, constructor(model) -> Sampler, aliases, options (scheduler, second_order, ...)."""

    def total_steps(self, steps):
        """Denoiser calls for `steps` steps: second-order samplers call the model twice per step."""
        if self.options.get("second_order", False):
            steps = steps * 2
        return steps


class InterruptedException(BaseException):
    """Raised inside sampling when the user interrupts or skips; the sampler returns its last latent."""


def setup_img2img_steps(p, steps=None):
    """(schedule length, t_enc) for img2img: the sampler runs t_enc+1 steps on the tail of the schedule."""
    if opts.img2img_fix_steps or steps is not None:
        requested_steps = (steps or p.steps)
        steps = int(requested_steps / min(p.denoising_strength, 0.999)) if p.denoising_strength > 0 else 0
        t_enc = requested_steps - 1
    else:
        steps = p.steps
        t_enc = int(min(p.denoising_strength, 0.999) * steps)

    return steps, t_enc


samples_to_image_tensor = samples_to_images_tensor


def store_latent(decoded):
    """Publish this step's x0 prediction for live previews; the state decides whether to render a preview now."""
    state.current_latent = decoded
    if opts.live_previews_enable:
        state.set_current_image()


def is_sampler_using_eta_noise_seed_delta(p):
    """Whether ENSD changes this job's result (and so belongs in its infotext): ancestral/SDE noise with eta != 0."""
    from modules import sd_samplers

    sampler_config = sd_samplers.find_sampler_config(p.sampler_name)

    eta = p.eta
    if eta is None and getattr(p, "sampler", None) is not None:
        eta = p.sampler.eta
    if eta is None and sampler_config is not None:
        eta = 0 if sampler_config.options.get("default_eta_is_0", False) else 1.0
    if eta == 0:
        return False

    return sampler_config is not None and sampler_config.options.get("uses_ensd", False)


class TorchHijack:
    """Stands in for `torch` inside k_diffusion.sampling: `randn_like` returns the next draw of each image's generator
    (so image k of a batch equals the single image made with seed+k); everything else is torch."""

    def __init__(self, p):
        self.rng = p.rng

    def __getattr__(self, item):
        if item == 'randn_like':
            return self.randn_like

        if hasattr(torch, item):
            return getattr(torch, item)

        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{item}'")

    def randn_like(self, x):
        expected = (len(self.rng.seeds), *self.rng.shape)
        if tuple(x.shape) != expected:
            # Noise for something other than the latent batch (an extension's own tensor): not from the seeds.
            return torch.randn_like(x)
        return self.rng.next().to(device=x.device, dtype=x.dtype)


def replace_torchsde_browinan():
    """Make torchsde's Brownian trees draw through our RNG source, so SDE samplers follow the RNG setting."""
    import torchsde._brownian.brownian_interval

    def torchsde_randn(size, dtype, device, seed, generator=None):
        return devices.randn_local(seed, size).to(device=device, dtype=dtype)

    torchsde._brownian.brownian_interval._randn = torchsde_randn


replace_torchsde_browinan()


def apply_refiner(cfg_denoiser, sigma=None):
    """Switch to the refiner checkpoint once sampling has progressed past p.refiner_switch_at; True if switched."""
    p = cfg_denoiser.p
    refiner_checkpoint_info = getattr(p, "refiner_checkpoint_info", None)
    refiner_switch_at = getattr(p, "refiner_switch_at", None)
    if refiner_checkpoint_info is None:
        return False

    if opts.refiner_switch_by_sample_steps or sigma is None:
        completed_ratio = cfg_denoiser.step / max(cfg_denoiser.total_steps or 1, 1)
        p.extra_generation_params["Refiner switch by sampling steps"] = True
    else:
        try:
            sigmas = cfg_denoiser.inner_model.sigmas.to(sigma.device)
            timestep = torch.argmin(torch.abs(sigmas - torch.max(sigma)))
        except AttributeError:  # timestep samplers pass the timestep itself
            timestep = torch.max(sigma).to(dtype=int)
        completed_ratio = (999 - timestep) / 1000

    if refiner_switch_at is not None and completed_ratio < refiner_switch_at:
        return False

    current_model = cfg_denoiser.sampler.model if getattr(cfg_denoiser.sampler, "model", None) is not None else shared.sd_model
    if getattr(current_model, "sd_checkpoint_info", None) == refiner_checkpoint_info:
        return False

    if getattr(p, "enable_hr", False):
        is_second_pass = getattr(p, "is_hr_pass", False)
        refiner_pass = opts.hires_fix_refiner_pass
        if refiner_pass == "first pass" and is_second_pass:
            return False
        if refiner_pass == "second pass" and not is_second_pass:
            return False
        if refiner_pass != "second pass":
            p.extra_generation_params['Hires refiner'] = refiner_pass

    started = time.perf_counter()
    sd_models.reload_model_weights(info=refiner_checkpoint_info)
    print(f"Switched to refiner {refiner_checkpoint_info.short_title} in {time.perf_counter() - started:.1f}s")
    # written after the load, which hashes a file used for the first time: its short title then has the hash
    p.extra_generation_params['Refiner'] = getattr(refiner_checkpoint_info, "short_title", str(refiner_checkpoint_info))
    p.extra_generation_params['Refiner switch at'] = refiner_switch_at
    cfg_denoiser.sampler.model = shared.sd_model
    p.sd_model = shared.sd_model  # the rest of the job (conditioning, decoding) uses the refiner, as in A1111

    devices.torch_gc()
    p.setup_conds()
    cfg_denoiser.update_inner_model()

    return True


class Sampler:
    """Base of all samplers: reads sampler settings from p, runs the sampling function, keeps progress and handles
    interrupts. Subclasses set `self.func`, `self.model_wrap_cfg` and implement sample / sample_img2img."""

    def __init__(self, funcname, sd_model=None):
        self.funcname = funcname
        self.func = funcname
        self.model = sd_model if sd_model is not None else shared.sd_model
        self.extra_params = []
        self.sampler_noises = None
        self.stop_at = None
        self.eta = None
        self.config: SamplerData = None  # set by the function calling the constructor
        self.last_latent = None
        self.s_min_uncond = None
        self.s_churn = 0.0
        self.s_tmin = 0.0
        self.s_tmax = float('inf')
        self.s_noise = 1.0

        self.eta_option_field = 'eta_ancestral'
        self.eta_infotext_field = 'Eta'
        self.eta_default = 1.0

        self.conditioning_key = getattr(getattr(self.model, "model", None), 'conditioning_key', 'crossattn')

        self.p = None
        self.model_wrap_cfg = None
        self.sampler_extra_args = None
        self.options = {}
        self._completed_steps_start = 0
        self._steps_this_pass = 0

    def _sample_args(self, p, conditioning, unconditional_conditioning, image_conditioning):
        """The CFG denoiser's keyword arguments, the same for every sampler family."""
        return {
            'cond': conditioning,
            'image_cond': image_conditioning,
            'uncond': unconditional_conditioning,
            'cond_scale': p.cfg_scale,
            's_min_uncond': self.s_min_uncond,
        }

    def callback_state(self, d):
        """Called by the sampling function once per step: progress for the UI."""
        step = d['i']

        if self.stop_at is not None and step > self.stop_at:
            raise InterruptedException

        state.sampling_step = step
        # Progress of the whole job, in the same unit as sampling_steps; never past this pass's share.
        limit = self._completed_steps_start + self._steps_this_pass
        state.completed_steps = min(state.completed_steps + 1, limit)

        if shared.total_tqdm is not None:
            shared.total_tqdm.update()

    def launch_sampling(self, steps, func):
        """Run `func` (the sampling call) for a pass of `steps` steps; on interrupt, return the last x0 prediction."""
        self.model_wrap_cfg.steps = steps  # A1111: the pass's step count, which extensions read off the denoiser
        state.sampling_steps = steps
        state.sampling_step = 0
        self._completed_steps_start = state.completed_steps
        self._steps_this_pass = steps

        try:
            samples = func()
        except RecursionError:
            print('Encountered RecursionError during sampling, returning last latent. rho >5 with a polyexponential scheduler may cause this error. You should try to use a smaller rho value instead.')
            return self.last_latent
        except InterruptedException:
            return self.last_latent
        finally:
            self._restore_torch()

        devices.test_for_nans(samples, "unet")
        state.completed_steps = max(state.completed_steps, self._completed_steps_start + steps)
        return samples

    def number_of_needed_noises(self, p):
        return p.steps

    def initialize(self, p) -> dict:
        """Per-generation setup from p and settings; returns the extra keyword arguments for the sampling function."""
        self.p = p
        self.model_wrap_cfg.p = p
        self.model_wrap_cfg.mask = getattr(p, 'mask', None)
        self.model_wrap_cfg.nmask = getattr(p, 'nmask', None)
        self.model_wrap_cfg.step = 0
        self.model_wrap_cfg.image_cfg_scale = getattr(p, 'image_cfg_scale', None)
        p_eta = getattr(p, "eta", None)
        self.eta = p_eta if p_eta is not None else getattr(opts, self.eta_option_field)
        s_min_uncond = getattr(p, 's_min_uncond', None)
        self.s_min_uncond = s_min_uncond if s_min_uncond is not None else opts.s_min_uncond

        if getattr(p, "rng", None) is not None:
            k_diffusion.sampling.torch = TorchHijack(p)

        parameters = inspect.signature(self.func).parameters
        extra_params_kwargs = {}
        for param_name in self.extra_params:
            if hasattr(p, param_name) and param_name in parameters:
                extra_params_kwargs[param_name] = getattr(p, param_name)

        if 'eta' in parameters:
            if self.eta != self.eta_default:
                p.extra_generation_params[self.eta_infotext_field] = self.eta

            extra_params_kwargs['eta'] = self.eta

        if len(self.extra_params) > 0:
            self._apply_sigma_settings(p, extra_params_kwargs)

        return extra_params_kwargs

    def _apply_sigma_settings(self, p, extra_params_kwargs):
        """s_churn/s_tmin/s_tmax/s_noise from p (else settings); written to infotext when not the defaults."""
        def value(name):
            v = getattr(p, name, None)
            return v if v is not None else getattr(opts, name)

        s_churn = value('s_churn')
        s_tmin = value('s_tmin')
        s_tmax = value('s_tmax') or self.s_tmax  # 0 means infinity
        s_noise = value('s_noise')

        parameters = inspect.signature(self.func).parameters
        for key, v, default, label in [
            ('s_churn', s_churn, self.s_churn, 'Sigma churn'),
            ('s_tmin', s_tmin, self.s_tmin, 'Sigma tmin'),
            ('s_tmax', s_tmax, self.s_tmax, 'Sigma tmax'),
            ('s_noise', s_noise, self.s_noise, 'Sigma noise'),
        ]:
            if key not in self.extra_params or key not in parameters:
                continue
            extra_params_kwargs[key] = v
            if v != default:
                setattr(p, key, v)
                p.extra_generation_params[label] = v

    @staticmethod
    def _restore_torch():
        """After sampling, k_diffusion.sampling draws plain torch noise again (no stale reference to this job)."""
        if isinstance(k_diffusion.sampling.torch, TorchHijack):
            k_diffusion.sampling.torch = torch

    def create_noise_sampler(self, x, sigmas, p):
        """Brownian-tree noise seeded with this iteration's image seeds, so SDE results do not depend on batch size."""
        if opts.no_dpmpp_sde_batch_determinism:
            return None

        from k_diffusion.sampling import BrownianTreeNoiseSampler
        sigma_min, sigma_max = sigmas[sigmas > 0].min(), sigmas.max()
        seeds = getattr(p, "seeds", None)
        if not seeds and getattr(p, "rng", None) is not None:
            seeds = p.rng.seeds
        if not seeds:
            seeds = p.all_seeds[p.iteration * p.batch_size:(p.iteration + 1) * p.batch_size]
        return BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed=[int(s) for s in seeds][:x.shape[0]])

    def sample(self, p, x, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        raise NotImplementedError()

    def sample_img2img(self, p, x, noise, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        raise NotImplementedError()

    def add_infotext(self, p):
        if self.model_wrap_cfg.padded_cond_uncond:
            p.extra_generation_params["Pad conds"] = True

        if self.model_wrap_cfg.padded_cond_uncond_v0:
            p.extra_generation_params["Pad conds v0"] = True
