"""Samplers on an analytic model whose exact answer is known, driven through the real sampler classes.

Data x0 ~ N(mu, s^2) per element has the ideal denoiser D(x, sigma) = mu + s^2/(s^2+sigma^2) (x - mu). The fake
model below exposes it as an SD1-style eps (or v) prediction over the scaled-linear 1000-step schedule, so every
sampler runs the same code path as with a checkpoint: registry -> sampler -> CFG denoiser -> model wrapper -> model.
The probability-flow ODE then has a closed-form solution, and stochastic samplers must produce N(mu, s^2).
"""
import math
import types

import pytest
import torch

import k_diffusion.sampling
from modules import devices, rng, sd_samplers, sd_samplers_common, sd_samplers_cfg_denoiser, shared

MU, S = 0.5, 0.8


def sd1_alphas_cumprod():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


class GaussianModel(torch.nn.Module):
    """An SD1-like model whose prediction is exact for Gaussian data; the prompt's mean shifts the data mean."""

    def __init__(self, parameterization="eps", nan=False):
        super().__init__()
        self.register_buffer("alphas_cumprod", sd1_alphas_cumprod())
        self.parameterization = parameterization
        self.model = types.SimpleNamespace(conditioning_key="crossattn")
        self.cond_stage_key = "txt"
        self.is_sdxl = False
        self.nan = nan
        self.calls = 0

    def t_to_sigma(self, t):
        log_sigmas = (((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5).log()
        t = t.float()
        lo, hi, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * log_sigmas[lo] + w * log_sigmas[hi]).exp()

    def apply_model(self, x_t, t, cond):
        self.calls += 1
        mu = MU + cond["c_crossattn"][0].mean(dim=(1, 2))[:, None, None, None]
        sigma = self.t_to_sigma(t)[:, None, None, None]
        a = 1 / (1 + sigma ** 2)  # alphas_cumprod at t
        x = x_t / a.sqrt()  # the sample in k-diffusion's sigma space
        d = mu + S ** 2 / (S ** 2 + sigma ** 2) * (x - mu)
        eps = (x - d) / sigma
        if self.nan:
            eps = eps * float("nan")
        if self.parameterization == "v":
            return a.sqrt() * eps - (1 - a).sqrt() * d
        return eps


class FakeP:
    """The fields of a processing object a sampler reads."""

    def __init__(self, seeds, shape=(4, 16, 16), steps=20, subseeds=None, subseed_strength=0.0, **kw):
        self.seeds = list(seeds)
        self.all_seeds = list(seeds)
        self.subseeds = subseeds
        self.subseed_strength = subseed_strength
        self.rng = rng.ImageRNG(shape, self.seeds, subseeds=subseeds, subseed_strength=subseed_strength)
        self.steps = steps
        self.cfg_scale = 7.0
        self.scheduler = None
        self.hr_scheduler = None
        self.is_hr_pass = False
        self.sampler_noise_scheduler_override = None
        self.extra_generation_params = {}
        self.s_min_uncond = None
        self.s_churn = None
        self.s_tmin = None
        self.s_tmax = None
        self.s_noise = None
        self.eta = None
        self.denoising_strength = 0.75
        self.mask = None
        self.nmask = None
        self.init_latent = None
        self.scripts = None
        self.batch_size = len(self.seeds)
        self.iteration = 0
        self.sampler_name = None
        self.__dict__.update(kw)


def conds(batch, value=0.0):
    return torch.full((batch, 77, 8), value)


def run(name, model=None, seeds=(1,), **kw):
    """txt2img with sampler `name`: returns (samples, the initial unit noise, sampler, p)."""
    model = model or GaussianModel()
    p = FakeP(seeds, **kw)
    sampler = sd_samplers.create_sampler(name, model)
    noise = p.rng.next()
    samples = sampler.sample(p, noise, conds(len(seeds)), conds(len(seeds)))
    return samples, noise, sampler, p


def exact_ode_answer(noise, sigma_start):
    """The probability-flow ODE from x = noise * sigma_start down to sigma 0."""
    return MU + S / math.sqrt(S ** 2 + sigma_start ** 2) * (noise * sigma_start - MU)


def exact_timestep_answer(noise, sampler, p, steps):
    """For timestep samplers: from unit noise at the first timestep they visit (UniPC: always 999) to the x_t at
    timestep 0."""
    a = sampler.model.alphas_cumprod
    t_first = 999 if sampler.config.name == "UniPC" else sampler.get_timesteps(p, steps)[-1]
    sigma_first = ((1 - a[t_first]) / a[t_first]).sqrt().item()
    sigma_last = ((1 - a[0]) / a[0]).sqrt().item()
    x_first = noise / a[t_first].sqrt()
    x_last = MU + math.sqrt((S ** 2 + sigma_last ** 2) / (S ** 2 + sigma_first ** 2)) * (x_first - MU)
    return a[0].sqrt() * x_last


@pytest.fixture
def opt(monkeypatch):
    def set_option(key, value):
        monkeypatch.setitem(shared.opts.data, key, value)
    return set_option


@pytest.fixture(autouse=True)
def cpu_noise_and_clean_state(monkeypatch):
    monkeypatch.setitem(shared.opts.data, "randn_source", "CPU")
    shared.state.interrupted = False
    shared.state.skipped = False
    yield
    shared.state.interrupted = False
    shared.state.skipped = False


# --- registry ----------------------------------------------------------------------------------------------------

EXPECTED_REGISTRY = [
    ("DPM++ 2M", ["k_dpmpp_2m"], {"scheduler": "karras"}),
    ("DPM++ SDE", ["k_dpmpp_sde"], {"scheduler": "karras", "second_order": True, "brownian_noise": True}),
    ("DPM++ 2M SDE", ["k_dpmpp_2m_sde"], {"scheduler": "exponential", "brownian_noise": True}),
    ("DPM++ 2M SDE Heun", ["k_dpmpp_2m_sde_heun"], {"scheduler": "exponential", "brownian_noise": True, "solver_type": "heun"}),
    ("DPM++ 2S a", ["k_dpmpp_2s_a"], {"scheduler": "karras", "uses_ensd": True, "second_order": True}),
    ("DPM++ 3M SDE", ["k_dpmpp_3m_sde"], {"scheduler": "exponential", "discard_next_to_last_sigma": True, "brownian_noise": True}),
    ("Euler a", ["k_euler_a", "k_euler_ancestral"], {"uses_ensd": True}),
    ("Euler", ["k_euler"], {}),
    ("LMS", ["k_lms"], {}),
    ("Heun", ["k_heun"], {"second_order": True}),
    ("DPM2", ["k_dpm_2"], {"scheduler": "karras", "discard_next_to_last_sigma": True, "second_order": True}),
    ("DPM2 a", ["k_dpm_2_a"], {"scheduler": "karras", "discard_next_to_last_sigma": True, "uses_ensd": True, "second_order": True}),
    ("DPM fast", ["k_dpm_fast"], {"uses_ensd": True}),
    ("DPM adaptive", ["k_dpm_ad"], {"uses_ensd": True}),
    ("Restart", ["restart"], {"scheduler": "karras", "second_order": True}),
    ("DDIM", ["ddim"], {}),
    ("DDIM CFG++", ["ddim_cfgpp"], {}),
    ("PLMS", ["plms"], {}),
    ("UniPC", ["unipc"], {}),
    ("LCM", ["k_lcm"], {}),
]

ALL_NAMES = [name for name, _, _ in EXPECTED_REGISTRY]


def test_registry_matches_a1111_order_aliases_and_options():
    got = [(s.name, list(s.aliases), dict(s.options)) for s in sd_samplers.all_samplers]
    assert got == EXPECTED_REGISTRY
    assert sd_samplers.visible_sampler_names() == ALL_NAMES
    assert sd_samplers.find_sampler_config(None).name == "DPM++ 2M"


def test_second_order_samplers_count_two_model_calls_per_step():
    assert sd_samplers.all_samplers_map["Heun"].total_steps(20) == 40
    assert sd_samplers.all_samplers_map["Euler"].total_steps(20) == 20


def test_hidden_samplers_are_not_visible(opt):
    opt("hide_samplers", ["PLMS", "DPM fast"])
    sd_samplers.set_samplers()
    try:
        names = sd_samplers.visible_sampler_names()
        assert "PLMS" not in names and "DPM fast" not in names and "Euler" in names
    finally:
        shared.opts.data["hide_samplers"] = []
        sd_samplers.set_samplers()


@pytest.mark.parametrize("sampler, scheduler, expected", [
    ("DPM++ 2M", "Karras", ("DPM++ 2M", "Automatic")),  # the sampler's own default reads back as Automatic
    ("DPM++ 2M", "Exponential", ("DPM++ 2M", "Exponential")),
    ("DPM++ 2M Karras", None, ("DPM++ 2M", "Automatic")),
    ("DPM++ 2M SDE Karras", "Automatic", ("DPM++ 2M SDE", "Karras")),
    ("DPM++ 2M SDE Heun Exponential", None, ("DPM++ 2M SDE Heun", "Automatic")),
    ("DPM++ SDE Karras", None, ("DPM++ SDE", "Automatic")),
    ("Euler a", None, ("Euler a", "Automatic")),
    ("Euler Karras", None, ("Euler", "Karras")),
    ("LMS Karras", None, ("LMS", "Karras")),
    ("DPM2 a Karras", None, ("DPM2 a", "Automatic")),
    ("k_euler_a", "", ("Euler a", "Automatic")),
    ("k_dpmpp_2m", "karras", ("DPM++ 2M", "Automatic")),
    ("euler a", "sgm_uniform", ("Euler a", "SGM Uniform")),
    ("DDIM", "DDIM", ("DDIM", "DDIM")),
    (None, None, ("DPM++ 2M", "Automatic")),
])
def test_sampler_and_schedule_names_as_users_write_them(sampler, scheduler, expected):
    assert sd_samplers.get_sampler_and_scheduler(sampler, scheduler) == expected


def test_convert_automatic_can_be_turned_off():
    assert sd_samplers.get_sampler_and_scheduler("DPM++ 2M Karras", None, convert_automatic=False) == ("DPM++ 2M", "Karras")


def test_infotext_lookups():
    d = {"Sampler": "DPM++ 2M", "Schedule type": "Karras", "Hires sampler": "Euler a"}
    assert sd_samplers.get_sampler_from_infotext(d) == "DPM++ 2M"
    assert sd_samplers.get_scheduler_from_infotext(d) == "Automatic"
    assert sd_samplers.get_hr_sampler_and_scheduler(d) == ("Euler a", "Use same scheduler")
    assert sd_samplers.get_hr_sampler_and_scheduler({"Sampler": "Euler", "Schedule type": "Automatic"}) == ("Use same sampler", "Use same scheduler")
    assert sd_samplers.get_sampler_from_infotext({"Sampler": "Euler a Karras"}) == "Euler a"


@pytest.mark.parametrize("call", [
    lambda: sd_samplers.create_sampler("Euler b", GaussianModel()),
    lambda: sd_samplers.get_sampler_and_scheduler("Euler b", None),
    lambda: sd_samplers.get_sampler_and_scheduler("DPM++ 9M Karras", None),
])
def test_unknown_sampler_is_a_clear_error(call):
    with pytest.raises(ValueError) as e:
        call()
    message = str(e.value)
    assert "Unknown sampler" in message and "DPM++ 2M" in message and "UniPC" in message and "LCM" in message


def test_unknown_schedule_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown schedule type 'Karas'.*Karras"):
        sd_samplers.get_sampler_and_scheduler("Euler", "Karas")
    with pytest.raises(ValueError, match="Unknown schedule type"):
        run("Euler", steps=4, scheduler="Karas")


# --- accuracy on the analytic model ---------------------------------------------------------------------------

DETERMINISTIC_K = ["DPM++ 2M", "Euler", "LMS", "Heun", "DPM2"]
TIMESTEP = ["DDIM", "PLMS", "UniPC"]


@pytest.mark.parametrize("name", DETERMINISTIC_K)
def test_deterministic_samplers_converge_to_the_ode_solution(name):
    errors = []
    for steps in (10, 40):
        samples, noise, sampler, p = run(name, steps=steps, scheduler="Karras")
        sigma_start = sampler.get_sigmas(p, steps)[0].item()
        errors.append((samples - exact_ode_answer(noise, sigma_start)).abs().max().item())
    # 4x the steps: at least 4x smaller error for first-order Euler, far more for the higher-order methods
    assert errors[1] < errors[0] / 3.5, errors
    assert errors[1] < (0.15 if name == "Euler" else 0.02), errors


@pytest.mark.parametrize("name", TIMESTEP)
def test_timestep_samplers_converge_to_the_ode_solution(name):
    errors = []
    for steps in (10, 40):
        samples, noise, sampler, p = run(name, steps=steps)
        errors.append((samples - exact_timestep_answer(noise, sampler, p, steps)).abs().max().item())
    assert errors[1] < errors[0] / 2.5, errors
    assert errors[1] < 0.15, errors


@pytest.mark.parametrize("variant", ["bh1", "bh2", "vary_coeff"])
@pytest.mark.parametrize("skip_type", ["time_uniform", "logSNR"])
def test_unipc_variants_are_accurate(opt, variant, skip_type):
    opt("uni_pc_variant", variant)
    opt("uni_pc_skip_type", skip_type)
    samples, noise, sampler, p = run("UniPC", steps=40)
    assert (samples - exact_timestep_answer(noise, sampler, p, 40)).abs().max().item() < 0.05


def test_deterministic_samplers_agree_with_one_another():
    results = {}
    for name in DETERMINISTIC_K + ["DPM adaptive"]:
        samples, _, _, _ = run(name, steps=40, scheduler="Karras", eta=0.0)
        results[name] = samples
    reference = results["DPM++ 2M"]
    for name, samples in results.items():
        tolerance = 0.15 if name in ("Euler", "DPM adaptive") else 0.02  # first order / adaptive with rtol 0.05
        assert (samples - reference).abs().max().item() < tolerance, name


def test_dpm_fast_with_eta_zero_is_deterministic_and_accurate():
    samples, noise, sampler, p = run("DPM fast", steps=30, eta=0.0, shape=(4, 16, 16))
    sigma_max = sampler.model_wrap.sigmas[-1].item()
    # DPM fast stops at the model's sigma_min: compare with the ODE run to that point
    sigma_min = sampler.model_wrap.sigmas[0].item()
    x_start = noise * sigma_max
    expected = MU + math.sqrt((S ** 2 + sigma_min ** 2) / (S ** 2 + sigma_max ** 2)) * (x_start - MU)
    assert (samples - expected).abs().max().item() < 0.02


STOCHASTIC = ["Euler a", "DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 3M SDE",
              "DPM fast", "DPM adaptive", "Restart"]


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_samplers_produce_the_data_distribution(name):
    steps = 120 if name == "Euler a" else 40  # first-order ancestral Euler approaches the answer slowly
    samples, _, _, _ = run(name, steps=steps, scheduler="Karras", shape=(4, 48, 48))
    assert samples.mean().item() == pytest.approx(MU, abs=0.03)
    assert samples.std().item() == pytest.approx(S, abs=0.035)


def test_lcm_sampler_runs_and_lands_on_a_clean_prediction():
    samples, _, _, _ = run("LCM", steps=4)
    assert torch.isfinite(samples).all()
    assert samples.mean().item() == pytest.approx(MU, abs=0.1)


@pytest.mark.parametrize("name", ["Euler", "DDIM"])
def test_v_prediction_model_gives_the_same_result_as_eps(name):
    eps, _, _, _ = run(name, model=GaussianModel("eps"), steps=10)
    v, _, _, _ = run(name, model=GaussianModel("v"), steps=10)
    torch.testing.assert_close(v, eps, atol=2e-3, rtol=0)


# --- seeds through the sampler --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Euler a", "DPM++ SDE", "DPM++ 2M SDE", "DDIM"])
def test_image_k_of_a_batch_equals_the_single_image_of_seed_plus_k(name, opt):
    opt("eta_ddim", 1.0)  # make DDIM draw noise every step
    batch, _, _, _ = run(name, seeds=[500, 501, 502], steps=8)
    single, _, _, _ = run(name, seeds=[501], steps=8)
    torch.testing.assert_close(batch[1], single[0], atol=1e-5, rtol=0)
    assert not torch.allclose(batch[0], batch[1])


@pytest.mark.parametrize("name", ["Euler a", "DPM++ SDE"])
def test_same_seed_same_result(name):
    a, _, _, _ = run(name, seeds=[9], steps=6)
    b, _, _, _ = run(name, seeds=[9], steps=6)
    assert torch.equal(a, b)


def test_ensd_changes_ancestral_results_but_not_euler(opt):
    euler_a, _, _, _ = run("Euler a", steps=6)
    euler, _, _, _ = run("Euler", steps=6)
    opt("eta_noise_seed_delta", 31337)
    euler_a_delta, _, _, _ = run("Euler a", steps=6)
    euler_delta, _, _, _ = run("Euler", steps=6)
    assert not torch.allclose(euler_a, euler_a_delta)
    assert torch.equal(euler, euler_delta)


def test_variation_strength_end_points_through_the_sampler():
    plain, _, _, _ = run("Euler", seeds=[10], steps=6)
    at_zero, _, _, _ = run("Euler", seeds=[10], subseeds=[77], subseed_strength=0.0, steps=6)
    at_one, _, _, _ = run("Euler", seeds=[10], subseeds=[77], subseed_strength=1.0, steps=6)
    variation_seed, _, _, _ = run("Euler", seeds=[77], steps=6)
    assert torch.equal(at_zero, plain)
    torch.testing.assert_close(at_one, variation_seed, atol=1e-4, rtol=0)


def test_ensd_in_infotext_only_when_it_matters():
    using = sd_samplers_common.is_sampler_using_eta_noise_seed_delta
    assert using(types.SimpleNamespace(sampler_name="Euler a", eta=None, sampler=None))
    assert not using(types.SimpleNamespace(sampler_name="Euler a", eta=0.0, sampler=None))
    assert not using(types.SimpleNamespace(sampler_name="Euler", eta=None, sampler=None))


def test_sampler_noise_goes_back_to_torch_after_sampling():
    before = k_diffusion.sampling.torch
    run("Euler a", steps=3)
    assert k_diffusion.sampling.torch is before


# --- schedule selection and settings in the infotext --------------------------------------------------------------

def test_automatic_schedule_is_the_samplers_default():
    _, _, sampler, p = run("DPM++ 2M", steps=4)
    assert p.extra_generation_params["Schedule type"] == "Karras"
    _, _, _, p = run("Euler", steps=4)
    assert "Schedule type" not in p.extra_generation_params  # the model's own discrete schedule


def test_discard_penultimate_sigma_keeps_the_step_count(opt):
    _, _, sampler, p = run("DPM2", steps=10)
    sigmas = sampler.get_sigmas(p, 10)
    assert len(sigmas) == 11 and sigmas[-1] == 0
    opt("always_discard_next_to_last_sigma", True)
    _, _, sampler, p = run("Euler", steps=10)
    assert len(sampler.get_sigmas(p, 10)) == 11
    assert p.extra_generation_params["Discard penultimate sigma"] is True


def test_sigma_settings_are_used_and_recorded(opt):
    opt("s_churn", 0.5)
    opt("sigma_max", 10.0)
    opt("rho", 5.0)
    _, _, sampler, p = run("Euler", steps=6, scheduler="Karras")
    assert p.extra_generation_params["Sigma churn"] == 0.5
    assert p.extra_generation_params["Schedule max sigma"] == 10.0
    assert p.extra_generation_params["Schedule rho"] == 5.0
    assert sampler.get_sigmas(p, 6)[0].item() == pytest.approx(10.0)


def test_eta_is_recorded_only_when_not_the_default():
    _, _, _, p = run("Euler a", steps=3)
    assert "Eta" not in p.extra_generation_params
    _, _, _, p = run("Euler a", steps=3, eta=0.5)
    assert p.extra_generation_params["Eta"] == 0.5
    _, _, _, p = run("DDIM", steps=3, eta=0.5)
    assert p.extra_generation_params["Eta DDIM"] == 0.5


def test_heun_variant_of_2m_sde_differs():
    midpoint, _, _, _ = run("DPM++ 2M SDE", steps=8)
    heun, _, _, _ = run("DPM++ 2M SDE Heun", steps=8)
    assert not torch.allclose(midpoint, heun)


def test_sgm_noise_multiplier(opt):
    plain, _, _, _ = run("Euler", steps=4)
    opt("sgm_noise_multiplier", True)
    sgm, _, _, p = run("Euler", steps=4)
    assert p.extra_generation_params["SGM noise multiplier"] is True
    assert not torch.allclose(plain, sgm)


def test_noise_schedule_override_wins():
    p_override = lambda steps: k_diffusion.sampling.get_sigmas_exponential(steps, 0.1, 5.0)  # noqa: E731
    _, _, sampler, p = run("Euler", steps=5, sampler_noise_scheduler_override=p_override)
    assert sampler.get_sigmas(p, 5)[0].item() == pytest.approx(5.0)


# --- img2img and inpainting ------------------------------------------------------------------------------------

def test_img2img_steps_math(opt):
    p = types.SimpleNamespace(steps=20, denoising_strength=0.5)
    assert sd_samplers_common.setup_img2img_steps(p) == (20, 10)
    assert sd_samplers_common.setup_img2img_steps(p, steps=10) == (20, 9)  # hires pass: explicit steps
    opt("img2img_fix_steps", True)
    assert sd_samplers_common.setup_img2img_steps(p) == (40, 19)


@pytest.mark.parametrize("name", ["Euler", "DPM++ 2M", "DDIM", "UniPC", "PLMS"])
def test_img2img_runs_t_enc_plus_one_steps_and_samples_around_the_init(name):
    model = GaussianModel()
    p = FakeP([3], steps=20, denoising_strength=0.3)
    sampler = sd_samplers.create_sampler(name, model)
    init = torch.full((1, 4, 16, 16), MU)  # the data mean: the denoiser keeps it
    noise = p.rng.next()
    shared.state.completed_steps = 0
    samples = sampler.sample_img2img(p, init, noise, conds(1), conds(1))
    assert shared.state.completed_steps == int(0.3 * 20) + 1 == shared.state.sampling_steps
    # the init is the data mean: img2img gives a sample around it, with less spread than a full txt2img sample
    assert samples.mean().item() == pytest.approx(MU, abs=0.1)
    assert 0.05 < samples.std().item() < S - 0.05


def test_img2img_follows_the_ode_from_the_start_sigma():
    model = GaussianModel()
    p = FakeP([4], steps=40, denoising_strength=0.5)
    sampler = sd_samplers.create_sampler("DPM++ 2M", model)
    init = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * S + MU
    noise = p.rng.next()
    samples = sampler.sample_img2img(p, init, noise, conds(1), conds(1))
    steps, t_enc = sd_samplers_common.setup_img2img_steps(p)
    sigma = sampler.get_sigmas(p, steps)[steps - t_enc - 1].item()
    xi = init + noise * sigma
    expected = MU + S / math.sqrt(S ** 2 + sigma ** 2) * (xi - MU)
    assert (samples - expected).abs().max().item() < 0.02


@pytest.mark.parametrize("name", ["Euler", "DPM++ 2M"])
def test_inpainting_mask_keeps_the_masked_area(name):
    model = GaussianModel()
    init = torch.full((1, 4, 16, 16), 2.0)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :8] = 1.0  # keep the left half
    p = FakeP([5], steps=10, denoising_strength=1.0, mask=mask, nmask=1 - mask, init_latent=init)
    sampler = sd_samplers.create_sampler(name, model)
    samples = sampler.sample_img2img(p, init, p.rng.next(), conds(1), conds(1))
    torch.testing.assert_close(samples[..., :8], init[..., :8], atol=1e-4, rtol=0)
    assert (samples[..., 8:] - init[..., 8:]).abs().mean().item() > 0.5


# --- CFG -------------------------------------------------------------------------------------------------------

def test_combine_denoised_is_composable_cfg():
    denoiser = sd_samplers_cfg_denoiser.CFGDenoiser(sampler=None)
    c0, c1, u = torch.full((1, 2), 1.0), torch.full((1, 2), 3.0), torch.full((1, 2), 0.5)
    x_out = torch.cat([c0, c1, u])
    conds_list = [[(0, 1.0), (1, -0.5)]]
    out = denoiser.combine_denoised(x_out, conds_list, torch.zeros(1, 77, 8), 7.0)
    expected = u + 7.0 * (1.0 * (c0 - u) - 0.5 * (c1 - u))
    torch.testing.assert_close(out, expected)


def test_cfg_guides_toward_the_prompt():
    def sample_with(cfg_scale):
        p = FakeP([6], steps=40, cfg_scale=cfg_scale)
        sampler = sd_samplers.create_sampler("DPM++ 2M", GaussianModel())
        noise = p.rng.next()
        samples = sampler.sample(p, noise, conds(1, 1.0), conds(1, 0.0))  # the prompt moves the data mean by +1
        return samples, noise, sampler.get_sigmas(p, 40)[0].item()

    def exact(noise, sigma, mu):
        return mu + S / math.sqrt(S ** 2 + sigma ** 2) * (noise * sigma - mu)

    samples, noise, sigma = sample_with(1.0)  # scale 1 is the prompt alone
    assert (samples - exact(noise, sigma, MU + 1.0)).abs().max().item() < 0.02
    samples, noise, sigma = sample_with(0.0)  # scale 0 is the negative prompt alone
    assert (samples - exact(noise, sigma, MU)).abs().max().item() < 0.02
    samples, noise, sigma = sample_with(3.0)  # higher scales push past the prompt
    assert samples.mean().item() > exact(noise, sigma, MU + 1.0).mean().item() + 0.5


def test_cond_and_uncond_go_through_the_model_in_one_call():
    model = GaussianModel()
    run("Euler", model=model, steps=5, seeds=[1, 2])
    assert model.calls == 5


def test_prompt_schedules_from_the_prompt_parser():
    prompt_parser = pytest.importorskip("modules.prompt_parser")
    ScheduledPromptConditioning = prompt_parser.ScheduledPromptConditioning
    c = prompt_parser.MulticondLearnedConditioning(shape=(1,), batch=[[
        prompt_parser.ComposableScheduledPromptConditioning([ScheduledPromptConditioning(3, torch.full((77, 8), 1.0)),
                                                              ScheduledPromptConditioning(10, torch.full((77, 8), 0.0))], 1.0)]])
    uc = [[ScheduledPromptConditioning(10, torch.zeros(77, 8))]]
    model = GaussianModel()
    p = FakeP([7], steps=10)
    sampler = sd_samplers.create_sampler("Euler", model)
    samples = sampler.sample(p, p.rng.next(), c, uc)
    assert torch.isfinite(samples).all()
    assert sampler.model_wrap_cfg.step == 10


# --- progress, interrupt, NaNs -------------------------------------------------------------------------------------

def test_progress_and_live_preview_latent():
    shared.state.completed_steps = 0
    shared.state.current_latent = None
    _, _, _, _ = run("Heun", steps=7)
    assert shared.state.sampling_steps == 7
    assert shared.state.completed_steps == 7
    assert shared.state.current_latent is not None and shared.state.current_latent.shape == (1, 4, 16, 16)


def test_interrupt_returns_the_last_prediction():
    model = GaussianModel()
    p = FakeP([8], steps=20)
    sampler = sd_samplers.create_sampler("Euler a", model)
    original = sampler.callback_state

    def interrupt_after_three(d):
        original(d)
        if d["i"] == 2:
            shared.state.interrupted = True

    sampler.callback_state = interrupt_after_three
    samples = sampler.sample(p, p.rng.next(), conds(1), conds(1))
    assert samples is sampler.last_latent
    assert model.calls == 3
    assert torch.isfinite(samples).all()


def test_nans_are_reported_with_a1111_message():
    with pytest.raises(devices.NansException, match="A tensor with all NaNs was produced in Unet"):
        run("Euler", model=GaussianModel(nan=True), steps=3)


def test_ancestral_step_formula():
    down, up = k_diffusion.sampling.get_ancestral_step(torch.tensor(2.0), torch.tensor(1.0), eta=1.0)
    assert up.item() == pytest.approx(math.sqrt(1.0 * (4.0 - 1.0) / 4.0))
    assert down.item() == pytest.approx(math.sqrt(1.0 - up.item() ** 2))
    assert k_diffusion.sampling.get_ancestral_step(torch.tensor(2.0), torch.tensor(1.0), eta=0.0) == (torch.tensor(1.0), 0.)
