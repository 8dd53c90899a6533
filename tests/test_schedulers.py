"""Schedule types: length, endpoints, monotonicity, and how a sampler picks its schedule."""
import types

import pytest
import torch

import k_diffusion.external
import k_diffusion.sampling
from modules import sd_schedulers, shared

SIGMA_MIN = 0.029167532920837402
SIGMA_MAX = 14.614642143249512
ENDS_AT_SIGMA_MIN = {"uniform", "karras", "exponential", "polyexponential", "normal", "beta"}


def sd1_alphas_cumprod():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


@pytest.fixture(scope="module")
def denoiser():
    model = types.SimpleNamespace(alphas_cumprod=sd1_alphas_cumprod())
    return k_diffusion.external.CompVisDenoiser(model)


def schedule(name, n, denoiser):
    scheduler = sd_schedulers.find_scheduler(name)
    kwargs = {"sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX}
    if scheduler.need_inner_model:
        kwargs["inner_model"] = denoiser
    return scheduler.function(n=n, **kwargs, device="cpu")


def test_model_sigma_range_matches_sd1(denoiser):
    assert denoiser.sigma_min.item() == pytest.approx(SIGMA_MIN, rel=1e-6)
    assert denoiser.sigma_max.item() == pytest.approx(SIGMA_MAX, rel=1e-6)


def test_ui_order_and_labels():
    assert [s.label for s in sd_schedulers.schedulers] == [
        "Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal",
        "Align Your Steps", "Simple", "Normal", "DDIM", "Beta"]


@pytest.mark.parametrize("name", [s.name for s in sd_schedulers.schedulers[1:]])
@pytest.mark.parametrize("n", [4, 11, 25])
def test_length_endpoints_and_monotonicity(name, n, denoiser):
    sigmas = schedule(name, n, denoiser)

    if name == "ddim":
        # like the DDIM sampler, every (1000 // n)-th timestep: n+1 values only when n divides 1000 (as upstream)
        assert len(sigmas) == len(range(1, 1000, 1000 // n)) + 1
    else:
        assert len(sigmas) == n + 1
    assert torch.all(sigmas[1:] < sigmas[:-1]), f"{name} is not strictly decreasing: {sigmas}"

    if name == "kl_optimal":
        # upstream's KL Optimal ends at sigma_min with no trailing zero
        assert sigmas[-1].item() == pytest.approx(SIGMA_MIN, rel=1e-4)
    else:
        assert sigmas[-1].item() == 0
        if name in ENDS_AT_SIGMA_MIN:
            assert sigmas[-2].item() == pytest.approx(SIGMA_MIN, rel=1e-3)
        else:  # these stop at or above the model's smallest sigma
            assert sigmas[-2].item() >= SIGMA_MIN * 0.99

    if name != "ddim":  # DDIM starts at the highest timestep it visits, which is below 999
        assert sigmas[0].item() == pytest.approx(SIGMA_MAX, rel=1e-3)


def test_karras_formula():
    sigmas = k_diffusion.sampling.get_sigmas_karras(5, 0.1, 10.0, rho=7.0)
    ramp = torch.linspace(0, 1, 5)
    expected = (10.0 ** (1 / 7) + ramp * (0.1 ** (1 / 7) - 10.0 ** (1 / 7))) ** 7
    torch.testing.assert_close(sigmas[:-1], expected)
    assert sigmas[0].item() == pytest.approx(10.0) and sigmas[-2].item() == pytest.approx(0.1)


def test_exponential_is_even_in_log_sigma():
    sigmas = k_diffusion.sampling.get_sigmas_exponential(6, 0.1, 10.0)[:-1]
    steps = sigmas.log().diff()
    torch.testing.assert_close(steps, torch.full_like(steps, steps[0].item()))


def test_polyexponential_with_rho_one_is_exponential():
    torch.testing.assert_close(k_diffusion.sampling.get_sigmas_polyexponential(7, 0.1, 10.0, rho=1.0),
                               k_diffusion.sampling.get_sigmas_exponential(7, 0.1, 10.0))


def test_vp_schedule_shape():
    sigmas = k_diffusion.sampling.get_sigmas_vp(10)
    assert len(sigmas) == 11 and sigmas[-1] == 0 and torch.all(sigmas[1:] < sigmas[:-1])


def test_align_your_steps_uses_the_published_list_at_ten_steps(denoiser):
    sigmas = sd_schedulers.get_align_your_steps_sigmas(11, SIGMA_MIN, SIGMA_MAX, "cpu", is_sdxl=False)
    torch.testing.assert_close(sigmas[:-1], torch.tensor(sd_schedulers.ays_sigmas_sd15))
    sdxl = sd_schedulers.get_align_your_steps_sigmas(11, SIGMA_MIN, SIGMA_MAX, "cpu", is_sdxl=True)
    torch.testing.assert_close(sdxl[:-1], torch.tensor(sd_schedulers.ays_sigmas_sdxl))


def test_uniform_visits_the_discrete_timesteps(denoiser):
    sigmas = schedule("uniform", 1000, denoiser)
    torch.testing.assert_close(sigmas[:-1], denoiser.sigmas.flip(0), rtol=1e-5, atol=1e-6)


def test_sigma_t_round_trip(denoiser):
    sigma = torch.tensor([0.05, 0.5, 1.0, 5.0, 14.0])
    torch.testing.assert_close(denoiser.t_to_sigma(denoiser.sigma_to_t(sigma)), sigma, rtol=1e-5, atol=1e-6)
    assert denoiser.sigma_to_t(denoiser.sigmas[10:11], quantize=True).item() == 10


def test_beta_schedule_reads_its_settings(denoiser, monkeypatch):
    a = schedule("beta", 10, denoiser)
    monkeypatch.setitem(shared.opts.data, "beta_dist_alpha", 0.3)
    b = schedule("beta", 10, denoiser)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("name, expected", [
    (None, "Automatic"), ("", "Automatic"), ("karras", "Karras"), ("Karras", "Karras"), ("KARRAS", "Karras"),
    ("SGMUniform", "SGM Uniform"), ("sgm_uniform", "SGM Uniform"), ("Align Your Steps", "Align Your Steps"),
])
def test_find_scheduler_by_name_label_or_alias(name, expected):
    assert sd_schedulers.find_scheduler(name).label == expected


def test_unknown_schedule_is_a_clear_error():
    with pytest.raises(ValueError) as e:
        sd_schedulers.find_scheduler("Karras2")
    assert "Karras2" in str(e.value) and "Exponential" in str(e.value) and "KL Optimal" in str(e.value)
