"""Seeded noise with A1111's semantics: one generator per image, variation seeds, resized seeds, ENSD, RNG sources.

RNG source (setting `randn_source`):
* "GPU" (default): torch's generator on the device the model runs on. On a CUDA machine that is a CUDA generator
  (the noise A1111 users get); on a CPU-only machine it is torch's CPU generator, so "GPU" and "CPU" give the same
  noise there.
* "CPU": torch's CPU generator whatever the device, so pictures match across video card vendors.
* "NV": modules.rng_philox, a CPU reproduction of the CUDA generator: a CPU-only machine gets the pictures an
  NVidia card makes.
"""
import torch

from modules import devices, rng_philox, shared


def get_noise_source_type():
    """The configured source; MPS has no seedable device generator of its own, so it uses the CPU's."""
    if shared.opts.randn_source == "GPU" and devices.device.type == "mps":
        return "CPU"
    return shared.opts.randn_source


nv_rng = None  # the global philox generator used by the seeded/unseeded functions below with the NV source


def randn(seed, shape, generator=None):
    """Normal noise for `seed`: the global generator is reseeded first (or `generator` is used, already seeded)."""
    manual_seed(seed)

    source = get_noise_source_type()
    if source == "NV":
        return torch.asarray((generator or nv_rng).randn(shape), device=devices.device)

    if source == "CPU" or devices.device.type == "mps":
        return torch.randn(shape, device=devices.cpu, generator=generator).to(devices.device)

    return torch.randn(shape, device=devices.device, generator=generator)


def randn_local(seed, shape):
    """Normal noise for `seed` from a fresh local generator, leaving the global ones alone (Brownian trees use it)."""
    source = get_noise_source_type()
    if source == "NV":
        return torch.asarray(rng_philox.Generator(seed).randn(shape), device=devices.device)

    local_device = devices.cpu if source == "CPU" or devices.device.type == "mps" else devices.device
    local_generator = torch.Generator(local_device).manual_seed(int(seed))
    return torch.randn(shape, device=local_device, generator=local_generator).to(devices.device)


def randn_like(x):
    """Normal noise shaped like `x`, continuing the global generator (no reseed)."""
    source = get_noise_source_type()
    if source == "NV":
        return torch.asarray(nv_rng.randn(x.shape), device=x.device, dtype=x.dtype)

    if source == "CPU" or x.device.type == "mps":
        return torch.randn_like(x, device=devices.cpu).to(x.device)

    return torch.randn_like(x)


def randn_without_seed(shape, generator=None):
    """The next normal noise of `generator` (or of the global generator)."""
    source = get_noise_source_type()
    if source == "NV":
        return torch.asarray((generator or nv_rng).randn(shape), device=devices.device)

    if source == "CPU" or devices.device.type == "mps":
        return torch.randn(shape, device=devices.cpu, generator=generator).to(devices.device)

    return torch.randn(shape, device=devices.device, generator=generator)


def manual_seed(seed):
    """Reseed the global generator of the configured source."""
    if get_noise_source_type() == "NV":
        global nv_rng
        nv_rng = rng_philox.Generator(seed)
        return

    torch.manual_seed(seed)


def create_generator(seed):
    """A generator of the configured source seeded with `seed` (one per image)."""
    source = get_noise_source_type()
    if source == "NV":
        return rng_philox.Generator(seed)

    device = devices.cpu if source == "CPU" or devices.device.type == "mps" else devices.device
    return torch.Generator(device).manual_seed(int(seed))


def slerp(val, low, high):
    """Spherical interpolation from `low` (val=0) to `high` (val=1), per row of dim 1 (variation seeds).

    When the two are almost parallel it falls back to linear interpolation. Upstream A1111 swaps the weights in that
    fallback (returning mostly `high` at val=0); here the fallback uses the correct weights, low*(1-val) + high*val,
    so both branches agree at the end points.
    """
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)

    if dot.mean() > 0.9995:
        return low * (1 - val) + high * val

    omega = torch.acos(dot)
    so = torch.sin(omega)
    res = (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high
    return res


class ImageRNG:
    """The noise of one batch: one generator per image, so an image's noise does not depend on its batch position.

    `first()` is the initial latent noise (with variation seed and resize-seed applied); every later `next()` is the
    next draw of each image's own generator, which is what samplers get when they ask for noise.
    """

    def __init__(self, shape, seeds, subseeds=None, subseed_strength=0.0, seed_resize_from_h=0, seed_resize_from_w=0):
        self.shape = tuple(map(int, shape))
        self.seeds = seeds
        self.subseeds = subseeds
        self.subseed_strength = subseed_strength
        self.seed_resize_from_h = seed_resize_from_h
        self.seed_resize_from_w = seed_resize_from_w

        self.generators = [create_generator(seed) for seed in seeds]

        self.is_first = True

    def first(self):
        resized = self.seed_resize_from_h > 0 and self.seed_resize_from_w > 0
        noise_shape = self.shape if not resized else (self.shape[0], int(self.seed_resize_from_h) // 8, int(self.seed_resize_from_w // 8))

        xs = []

        for i, (seed, generator) in enumerate(zip(self.seeds, self.generators)):
            subnoise = None
            if self.subseeds is not None and self.subseed_strength != 0:
                subseed = 0 if i >= len(self.subseeds) else self.subseeds[i]
                subnoise = randn(subseed, noise_shape)

            if noise_shape != self.shape:
                noise = randn(seed, noise_shape)
            else:
                noise = randn(seed, self.shape, generator=generator)

            if subnoise is not None:
                noise = slerp(self.subseed_strength, noise, subnoise)

            if noise_shape != self.shape:
                noise = self._paste_centred(noise, randn(seed, self.shape, generator=generator))

            xs.append(noise)

        eta_noise_seed_delta = int(shared.opts.eta_noise_seed_delta or 0)
        if eta_noise_seed_delta:
            # ENSD: sampler noise (not the initial noise above) comes from generators seeded with seed + ENSD.
            self.generators = [create_generator(seed + eta_noise_seed_delta) for seed in self.seeds]

        return torch.stack(xs).to(devices.device)

    @staticmethod
    def _paste_centred(noise, x):
        """Resize seed: the noise made at the old size, centred in the new size's noise (cropped if larger)."""
        dx = (x.shape[2] - noise.shape[2]) // 2
        dy = (x.shape[1] - noise.shape[1]) // 2
        w = noise.shape[2] if dx >= 0 else noise.shape[2] + 2 * dx
        h = noise.shape[1] if dy >= 0 else noise.shape[1] + 2 * dy
        tx = dx if dx >= 0 else 0
        ty = dy if dy >= 0 else 0
        dx = max(-dx, 0)
        dy = max(-dy, 0)

        x[:, ty:ty + h, tx:tx + w] = noise[:, dy:dy + h, dx:dx + w]
        return x

    def next(self):
        if self.is_first:
            self.is_first = False
            return self.first()

        xs = []
        for generator in self.generators:
            x = randn_without_seed(self.shape, generator=generator)
            xs.append(x)

        return torch.stack(xs).to(devices.device)

