"""Seeds and noise as A1111 makes them: NV test vectors, one generator per image, variation and resize seeds, ENSD."""
import numpy as np
import pytest
import torch

from modules import rng, rng_philox, shared

SHAPE = (4, 8, 8)


@pytest.fixture
def opt(monkeypatch):
    """Set a setting for one test only."""
    def set_option(key, value):
        monkeypatch.setitem(shared.opts.data, key, value)
    return set_option


def test_nv_generator_reproduces_reference_vectors():
    g = rng_philox.Generator(0)
    expected = [[-0.9246624, -0.42534396, -2.6438458, 0.14518388],
                [-0.12086651, -0.5797257, -0.6228513, -0.32838714],
                [-1.074542, -0.3631441, -1.6710504, 2.265505]]
    np.testing.assert_allclose(g.randn((3, 4)), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(g.randn((2,)), [0.18082589, -0.5522627], rtol=0, atol=1e-6)

    expected_1234 = [-1.6164904, 0.5684552, -0.5102246, -0.9113394, -1.1555171, -0.2261509, -1.2891325, 1.0653822,
                     -0.7166609, -0.5333343, 0.2077580, -0.9798434, 0.7446934, -0.2394855, 0.2737151, 0.0920083]
    np.testing.assert_allclose(rng_philox.Generator(1234).randn((1, 4, 2, 2)).flatten(), expected_1234, rtol=0, atol=1e-6)


def test_nv_generator_accepts_negative_seeds_as_torch_does():
    a = rng_philox.Generator(-5).randn((4,))
    b = rng_philox.Generator(2 ** 64 - 5).randn((4,))
    np.testing.assert_array_equal(a, b)


def test_nv_source_gives_the_nv_noise_for_a_seed(opt):
    opt("randn_source", "NV")
    noise = rng.ImageRNG(SHAPE, [1234]).next()
    expected = torch.from_numpy(rng_philox.Generator(1234).randn(SHAPE))
    assert torch.equal(noise[0].cpu(), expected)


def test_gpu_source_on_a_cpu_machine_equals_the_cpu_source(opt):
    opt("randn_source", "GPU")
    gpu = rng.ImageRNG(SHAPE, [7, 8]).next()
    opt("randn_source", "CPU")
    cpu = rng.ImageRNG(SHAPE, [7, 8]).next()
    if torch.cuda.is_available() and shared.device.type == "cuda":
        pytest.skip("on CUDA the GPU source is the CUDA generator")
    assert torch.equal(gpu, cpu)


@pytest.mark.parametrize("source", ["CPU", "NV"])
def test_image_noise_does_not_depend_on_batch_position(opt, source):
    opt("randn_source", source)
    batch = rng.ImageRNG(SHAPE, [100, 101, 102])
    single = rng.ImageRNG(SHAPE, [101])
    for _ in range(3):  # initial noise and two later sampler draws
        assert torch.equal(batch.next()[1], single.next()[0])


def test_first_draw_is_the_seed_noise_and_later_draws_continue_the_generator(opt):
    opt("randn_source", "CPU")
    g = torch.Generator("cpu").manual_seed(42)
    expected_first = torch.randn(SHAPE, generator=g)
    expected_second = torch.randn(SHAPE, generator=g)
    r = rng.ImageRNG(SHAPE, [42])
    assert torch.equal(r.next()[0], expected_first)
    assert torch.equal(r.next()[0], expected_second)


def test_variation_strength_end_points(opt):
    opt("randn_source", "CPU")
    plain = rng.ImageRNG(SHAPE, [10]).first()
    subseed_noise = rng.ImageRNG(SHAPE, [99]).first()

    at_zero = rng.ImageRNG(SHAPE, [10], subseeds=[99], subseed_strength=0.0).first()
    at_one = rng.ImageRNG(SHAPE, [10], subseeds=[99], subseed_strength=1.0).first()
    halfway = rng.ImageRNG(SHAPE, [10], subseeds=[99], subseed_strength=0.5).first()

    assert torch.equal(at_zero, plain)
    torch.testing.assert_close(at_one, subseed_noise, atol=1e-5, rtol=0)
    assert not torch.allclose(halfway, plain) and not torch.allclose(halfway, subseed_noise)
    # slerp keeps the noise at unit scale (a linear mix would shrink it to ~0.71)
    assert abs(halfway.std().item() - 1.0) < 0.15


def test_slerp_near_parallel_fallback_uses_correct_weights():
    low = torch.randn(1, 16)
    high = low * 1.001  # nearly parallel: the linear fallback is taken
    torch.testing.assert_close(rng.slerp(0.0, low, high), low)
    torch.testing.assert_close(rng.slerp(1.0, low, high), high)
    torch.testing.assert_close(rng.slerp(0.25, low, high), 0.75 * low + 0.25 * high)


def test_resize_seed_pastes_the_old_size_noise_centred(opt):
    opt("randn_source", "CPU")
    big = rng.ImageRNG((4, 16, 16), [5], seed_resize_from_h=64, seed_resize_from_w=64).first()[0]
    small = rng.ImageRNG((4, 8, 8), [5]).first()[0]
    assert torch.equal(big[:, 4:12, 4:12], small)

    # from a larger size: the centre of the larger noise is cropped
    small_from_big = rng.ImageRNG((4, 8, 8), [5], seed_resize_from_h=128, seed_resize_from_w=128).first()[0]
    full_big = rng.ImageRNG((4, 16, 16), [5]).first()[0]
    assert torch.equal(small_from_big, full_big[:, 4:12, 4:12])


def test_ensd_changes_sampler_noise_but_not_the_initial_noise(opt):
    opt("randn_source", "CPU")
    plain = rng.ImageRNG(SHAPE, [3])
    first_plain, second_plain = plain.next(), plain.next()

    opt("eta_noise_seed_delta", 31337)
    delta = rng.ImageRNG(SHAPE, [3])
    first_delta, second_delta = delta.next(), delta.next()

    assert torch.equal(first_plain, first_delta)
    assert not torch.equal(second_plain, second_delta)
    # the later draws are the first draws of the generator seeded with seed + ENSD
    expected = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(3 + 31337))
    assert torch.equal(second_delta[0], expected)


def test_randn_local_does_not_touch_the_global_generator(opt):
    opt("randn_source", "CPU")
    torch.manual_seed(0)
    expected = torch.randn(3)
    torch.manual_seed(0)
    rng.randn_local(123, (5,))
    assert torch.equal(torch.randn(3), expected)
