"""How torch's CPU threads wait, set before torch is first imported.

torch's OpenMP threads spin for a long time at every barrier before they sleep. When other programs share the CPU
(a browser, a second job, another engineer's tests), a spinning thread holds a core the thread it waits for needs,
and small kernels get 5-80x slower (measured on a busy 2-core machine: a 64-channel Linear 0.25 ms -> 20 ms,
a 64x64x32x32 Conv2d 14 ms -> 75 ms). Sleeping at once (OMP_WAIT_POLICY=PASSIVE) keeps them at the idle speed;
large kernels lose nothing measurable. A value the user has set is kept.
"""
import os
import sys


def prefer_passive_omp_wait():
    """Default OMP_WAIT_POLICY to PASSIVE. Only takes effect before torch's OpenMP runtime starts (first import)."""
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return True
