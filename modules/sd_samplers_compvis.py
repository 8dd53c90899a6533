"""A1111's old CompVis sampler wrapper name, kept because extensions still subclass it (A1111 < 1.6 module).

Our DDIM/PLMS/UniPC live in the timestep samplers; this class only holds a CompVis-style sampler object built by
`constructor(sd_model)` so extension subclasses (e.g. dynamic thresholding's UniPC path) import and construct.
"""


class VanillaStableDiffusionSampler:
    def __init__(self, constructor, sd_model):
        self.sampler = constructor(sd_model)
        self.is_ddim = False
        self.is_plms = False
        self.is_unipc = False
        self.model = sd_model
        self.p = None
        self.step = 0
        self.stop_at = None
        self.eta = None
        self.config = None
        self.last_latent = None
        self.conditioning_key = getattr(getattr(sd_model, "model", None), "conditioning_key", "crossattn")

    def number_of_needed_noises(self, p):
        return 0

    def interrupt(self):
        self.stop_at = self.step

    def sample(self, p, x, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        raise NotImplementedError("CompVis samplers are not available; choose a k-diffusion or timestep sampler")

    def sample_img2img(self, p, x, noise, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        raise NotImplementedError("CompVis samplers are not available; choose a k-diffusion or timestep sampler")
