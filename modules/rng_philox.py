"""The "NV" random source: torch's CUDA normal generator (Philox4x32-10 + Box-Muller) reproduced on the CPU.

With it, a machine without an NVidia card makes the same noise for a seed as `torch.randn(..., device="cuda")`
does (A1111: modules.rng_philox). Pure numpy, so the result does not depend on the torch build.
"""
import numpy as np

philox_m = [0xD2511F53, 0xCD9E8D57]
philox_w = [0x9E3779B9, 0xBB67AE85]

two_pow32_inv = np.array([2.3283064e-10], dtype=np.float32)
two_pow32_inv_2pi = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)


def uint32(x):
    """Split an array of uint64 into its (low, high) uint32 words, as a (2, ...) array."""
    return x.view(np.uint32).reshape(-1, 2).transpose(1, 0)


def philox4_round(counter, key):
    """One Philox4x32 round, in place on the (4, n) uint32 counter."""
    v1 = uint32(counter[0].astype(np.uint64) * philox_m[0])
    v2 = uint32(counter[2].astype(np.uint64) * philox_m[1])

    counter[0] = v2[1] ^ counter[1] ^ key[0]
    counter[1] = v2[0]
    counter[2] = v1[1] ^ counter[3] ^ key[1]
    counter[3] = v1[0]


def philox4_32(counter, key, rounds=10):
    """Philox4x32 with `rounds` rounds; the key is bumped by the Weyl constants between rounds."""
    for _ in range(rounds - 1):
        philox4_round(counter, key)
        key[0] = key[0] + philox_w[0]
        key[1] = key[1] + philox_w[1]

    philox4_round(counter, key)
    return counter


def box_muller(x, y):
    """Normal samples from two uint32 arrays, with the float32 constants the CUDA kernel uses."""
    u = x * two_pow32_inv + two_pow32_inv / 2
    v = y * two_pow32_inv_2pi + two_pow32_inv_2pi / 2

    s = np.sqrt(-2.0 * np.log(u))
    r1 = s * np.sin(v)
    return r1.astype(np.float32)


class Generator:
    """A seeded stream of normal samples; each randn() call advances the Philox offset by one."""

    def __init__(self, seed):
        self.seed = seed
        self.offset = 0

    def randn(self, shape):
        """Normal samples of the given shape, equal to torch.randn(shape, device="cuda") after manual_seed(seed)."""
        n = 1
        for x in shape:
            n *= x

        counter = np.zeros((4, n), dtype=np.uint32)
        counter[0] = self.offset
        counter[2] = np.arange(n, dtype=np.uint32)  # the index of each element within this draw
        self.offset += 1

        seed = int(self.seed) & 0xFFFFFFFFFFFFFFFF  # torch reads a negative seed as its 64-bit two's complement
        key = uint32(np.full(n, seed, dtype=np.uint64))  # (low word, high word) of the seed for every element

        g = philox4_32(counter, key)
        return box_muller(g[0], g[1]).reshape(shape)
