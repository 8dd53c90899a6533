"""How many CPU threads torch uses, and how they wait.

torch's OpenMP threads spin for a long time at every barrier before they sleep. When other programs share the CPU
(a browser, a second job, another engineer's tests), a spinning thread holds a core the thread it waits for needs,
and small kernels get 5-80x slower (measured on a busy 2-core machine: a 64-channel Linear 0.25 ms -> 20 ms,
a 64x64x32x32 Conv2d 14 ms -> 75 ms). Sleeping at once (OMP_WAIT_POLICY=PASSIVE) keeps them at the idle speed;
large kernels lose nothing measurable. A value the user has set is kept.

A job whose UNet kernels are all tiny (the demo model at its 64x64 default) gains nothing from a second thread even on
an idle CPU, and every kernel waits at a barrier for the slowest thread: when anything else wants a core (the browser
showing the page), one descheduled thread stalls each of its ~600 kernels a step. Such jobs run on one thread
(measured on 2 cores with one core busy: demo UNet step at 8x8 latents 11.5 ms on one thread, 45 ms on two; at 64x64
latents two threads win, 421 vs 705 ms, as they do for SD1.5 at any size).
"""
import contextlib
import os
import sys

# model_channels^2 x latent pixels x batch: below this a job's kernels are too small to split (demo model 64x64:
# 32^2 x 64 x 1 = 65k; demo 256x256: 1.0M, about even on one or two threads; SD1.5 64x64: 6.6M, two threads win)
ONE_THREAD_BELOW_WORK = 1_000_000


def prefer_passive_omp_wait():
    """Default OMP_WAIT_POLICY to PASSIVE. Only takes effect before torch's OpenMP runtime starts (first import)."""
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return True


def unet_work(unet, latent_pixels, batch_size):
    """A size for one sampling step's kernels: conv and attention cost grows with channels squared and pixels."""
    return unet.model_channels ** 2 * latent_pixels * batch_size


@contextlib.contextmanager
def threads_for_work(device, work):
    """One torch thread for the duration when `work` (unet_work) is too small to split on the CPU; otherwise, on a
    GPU, or when the user chose the thread count (OMP_NUM_THREADS), nothing changes."""
    import torch
    threads = torch.get_num_threads()
    if device.type != "cpu" or work >= ONE_THREAD_BELOW_WORK or threads == 1 or "OMP_NUM_THREADS" in os.environ:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
