"""A job too small to split over CPU threads runs on one (modules/cpu_threading.py): the demo model's default job
gains nothing from a second thread and is 4x slower with one when the browser wants a core."""
import pytest
import torch

from modules import cpu_threading, devices, processing


def threads_seen_by_the_unet(model, **job):
    seen = []
    handle = model.model.diffusion_model.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    try:
        params = dict(sd_model=model, prompt="a red circle", steps=2, width=64, height=64, seed=1, sampler_name="Euler",
                      do_not_save_samples=True, do_not_save_grid=True)
        processing.process_images(processing.StableDiffusionProcessingTxt2Img(**dict(params, **job)))
    finally:
        handle.remove()
    return set(seen)


@pytest.fixture
def several_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(max(before, 2))
    yield torch.get_num_threads()
    torch.set_num_threads(before)


def test_a_small_job_samples_on_one_thread_and_gives_the_threads_back(tiny_model, several_threads):
    assert threads_seen_by_the_unet(tiny_model) == {1}
    assert torch.get_num_threads() == several_threads


def test_a_large_job_keeps_every_thread(tiny_model, several_threads):
    # tiny model (32 channels) at 384x384: 32^2 x 48^2 = 2.4M, past the one-thread bound
    assert threads_seen_by_the_unet(tiny_model, width=384, height=384, steps=1) == {several_threads}


def test_the_hires_pass_counts_when_sizing_the_job():
    p = processing.StableDiffusionProcessingTxt2Img(prompt="x", width=64, height=64, enable_hr=True, hr_scale=8)
    p.calculate_target_resolution()  # as the job's init does, before the thread count is chosen
    assert p.largest_latent_pixels() == 64 * 64
    assert processing.StableDiffusionProcessingTxt2Img(prompt="x", width=64, height=96).largest_latent_pixels() == 8 * 12


def test_the_users_thread_count_and_the_gpu_are_left_alone(monkeypatch, several_threads):
    small = cpu_threading.ONE_THREAD_BELOW_WORK - 1
    with cpu_threading.threads_for_work(torch.device("cuda"), small):
        assert torch.get_num_threads() == several_threads
    monkeypatch.setenv("OMP_NUM_THREADS", str(several_threads))
    with cpu_threading.threads_for_work(devices.cpu, small):
        assert torch.get_num_threads() == several_threads
    monkeypatch.delenv("OMP_NUM_THREADS")
    with cpu_threading.threads_for_work(devices.cpu, small):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == several_threads
