"""txt2img with A1111's hires fix (reference §1.2 and §4.3)."""
from dataclasses import dataclass, field
from typing import Any

import torch

from modules import devices, extra_networks, images, processing_request, prompt_comments, prompt_parser, rng, sd_models, sd_samplers, shared
from modules.latent_codec import decode_latent_batch, images_tensor_to_samples, latents_to_image_tensors
from modules.processing import StableDiffusionProcessing, opt_f
from modules.processing_helpers import image_to_tensor, tensor_to_image
from modules.shared import opts, state

# Hires "Latent" upscaler names -> torch interpolate mode and antialias (A1111 keeps them in shared).
latent_upscale_modes = shared.latent_upscale_modes
latent_upscale_default_mode = shared.latent_upscale_default_mode


def hires_upscaler_names():
    return list(latent_upscale_modes) + [x.name for x in shared.sd_upscalers]


@dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    enable_hr: bool = False
    denoising_strength: float = 0.75
    firstphase_width: int = 0
    firstphase_height: int = 0
    hr_scale: float = 2.0
    hr_upscaler: str = None
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_checkpoint_name: str = None
    hr_sampler_name: str = None
    hr_scheduler: str = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    force_task_id: str = None

    cached_hr_uc = [None, None]
    cached_hr_c = [None, None]

    hr_checkpoint_info: dict = field(default=None, init=False)
    hr_upscale_to_x: int = field(default=0, init=False)
    hr_upscale_to_y: int = field(default=0, init=False)
    truncate_x: int = field(default=0, init=False)
    truncate_y: int = field(default=0, init=False)
    applied_old_hires_behavior_to: tuple = field(default=None, init=False)
    latent_scale_mode: dict = field(default=None, init=False)
    hr_c: tuple | None = field(default=None, init=False)
    hr_uc: tuple | None = field(default=None, init=False)
    all_hr_prompts: list = field(default=None, init=False)
    all_hr_negative_prompts: list = field(default=None, init=False)
    hr_prompts: list = field(default=None, init=False)
    hr_negative_prompts: list = field(default=None, init=False)
    hr_extra_network_data: list = field(default=None, init=False)

    def __post_init__(self):
        super().__post_init__()
        if self.firstphase_width != 0 or self.firstphase_height != 0:
            self.hr_upscale_to_x = self.width
            self.hr_upscale_to_y = self.height
            self.width = self.firstphase_width
            self.height = self.firstphase_height
        self.cached_hr_uc = StableDiffusionProcessingTxt2Img.cached_hr_uc
        self.cached_hr_c = StableDiffusionProcessingTxt2Img.cached_hr_c

    def calculate_target_resolution(self):
        """Hires target size: scale, or resize-to with A1111's cover-and-crop rule (truncate in latent pixels)."""
        self.hr_resize_x = int(self.hr_resize_x or 0)
        self.hr_resize_y = int(self.hr_resize_y or 0)
        if self.hr_resize_x == 0 and self.hr_resize_y == 0:
            self.extra_generation_params["Hires upscale"] = self.hr_scale
            self.hr_upscale_to_x = int(self.width * self.hr_scale)
            self.hr_upscale_to_y = int(self.height * self.hr_scale)
            return
        self.extra_generation_params["Hires resize"] = f"{self.hr_resize_x}x{self.hr_resize_y}"
        if self.hr_resize_y == 0:
            self.hr_upscale_to_x = self.hr_resize_x
            self.hr_upscale_to_y = self.hr_resize_x * self.height // self.width
        elif self.hr_resize_x == 0:
            self.hr_upscale_to_x = self.hr_resize_y * self.width // self.height
            self.hr_upscale_to_y = self.hr_resize_y
        else:
            target_w, target_h = self.hr_resize_x, self.hr_resize_y
            src_ratio = self.width / self.height
            dst_ratio = target_w / target_h
            if src_ratio < dst_ratio:
                self.hr_upscale_to_x = target_w
                self.hr_upscale_to_y = target_w * self.height // self.width
            else:
                self.hr_upscale_to_x = target_h * self.width // self.height
                self.hr_upscale_to_y = target_h
            self.truncate_x = (self.hr_upscale_to_x - target_w) // opt_f
            self.truncate_y = (self.hr_upscale_to_y - target_h) // opt_f

    def init(self, all_prompts, all_seeds, all_subseeds):
        if not self.enable_hr:
            return
        self.extra_generation_params["Denoising strength"] = self.denoising_strength
        if self.hr_checkpoint_name and self.hr_checkpoint_name != "Use same checkpoint":
            self.hr_checkpoint_info = processing_request.checkpoint_or_error("hr_checkpoint_name", self.hr_checkpoint_name)
            self.extra_generation_params["Hires checkpoint"] = self.hr_checkpoint_info.short_title
        if self.hr_sampler_name is not None and self.hr_sampler_name != self.sampler_name:
            self.extra_generation_params["Hires sampler"] = self.hr_sampler_name

        def get_hr_prompt(p, index, prompt_text, **kwargs):
            hr_prompt = p.all_hr_prompts[index]
            return hr_prompt if hr_prompt != prompt_text else None

        def get_hr_negative_prompt(p, index, negative_prompt, **kwargs):
            hr_negative_prompt = p.all_hr_negative_prompts[index]
            return hr_negative_prompt if hr_negative_prompt != negative_prompt else None

        self.extra_generation_params["Hires prompt"] = get_hr_prompt
        self.extra_generation_params["Hires negative prompt"] = get_hr_negative_prompt
        self.extra_generation_params["Hires schedule type"] = None  # reserve the key's place, as A1111

        if self.hr_scheduler is None:
            self.hr_scheduler = self.scheduler

        self.latent_scale_mode = latent_upscale_modes.get(self.hr_upscaler, None) if self.hr_upscaler is not None else latent_upscale_modes.get(latent_upscale_default_mode, "nearest")
        if self.enable_hr and self.latent_scale_mode is None:
            names = [x.name for x in shared.sd_upscalers]
            if self.hr_upscaler not in names:
                raise ValueError(f"could not find upscaler named {self.hr_upscaler}; valid upscalers: {', '.join(hires_upscaler_names())}")

        self.calculate_target_resolution()
        if not state.processing_has_refined_job_count:
            if state.job_count == -1:
                state.job_count = self.n_iter
            state.job_count = state.job_count * 2
            state.processing_has_refined_job_count = True
        if self.hr_second_pass_steps:
            self.extra_generation_params["Hires steps"] = self.hr_second_pass_steps
        if self.hr_upscaler is not None:
            self.extra_generation_params["Hires upscaler"] = self.hr_upscaler

    def expected_sampler_steps(self):
        return self.steps + ((self.hr_second_pass_steps or self.steps) if self.enable_hr else 0)

    def largest_latent_pixels(self):
        first = super().largest_latent_pixels()
        return max(first, (self.hr_upscale_to_x // opt_f) * (self.hr_upscale_to_y // opt_f)) if self.enable_hr else first

    def setup_prompts(self):
        super().setup_prompts()
        if not self.enable_hr:
            return
        if self.hr_prompt == "":
            self.hr_prompt = self.prompt
        if self.hr_negative_prompt == "":
            self.hr_negative_prompt = self.negative_prompt
        count = len(self.all_prompts)
        self.all_hr_prompts = self.hr_prompt if isinstance(self.hr_prompt, list) else [self.hr_prompt] * count
        self.all_hr_negative_prompts = self.hr_negative_prompt if isinstance(self.hr_negative_prompt, list) else [self.hr_negative_prompt] * count
        if self.styles and shared.prompt_styles is not None:
            self.all_hr_prompts = [shared.prompt_styles.apply_styles_to_prompt(x, self.styles) for x in self.all_hr_prompts]
            self.all_hr_negative_prompts = [shared.prompt_styles.apply_negative_styles_to_prompt(x, self.styles) for x in self.all_hr_negative_prompts]
        if opts.enable_prompt_comments:
            self.all_hr_prompts = [prompt_comments.strip_comments(x) for x in self.all_hr_prompts]
            self.all_hr_negative_prompts = [prompt_comments.strip_comments(x) for x in self.all_hr_negative_prompts]

    def parse_extra_network_prompts(self):
        super().parse_extra_network_prompts()
        if self.enable_hr:
            n = self.iteration
            self.hr_prompts = self.all_hr_prompts[n * self.batch_size:(n + 1) * self.batch_size]
            self.hr_negative_prompts = self.all_hr_negative_prompts[n * self.batch_size:(n + 1) * self.batch_size]
            self.hr_prompts, self.hr_extra_network_data = extra_networks.parse_prompts(self.hr_prompts)

    def calculate_hr_conds(self):
        if self.hr_c is not None:
            return
        hr_prompts = prompt_parser.SdConditioning(self.hr_prompts, width=self.hr_upscale_to_x, height=self.hr_upscale_to_y)
        hr_negative_prompts = prompt_parser.SdConditioning(self.hr_negative_prompts, width=self.hr_upscale_to_x, height=self.hr_upscale_to_y, is_negative_prompt=True)
        sampler_config = sd_samplers.find_sampler_config(self.hr_sampler_name or self.sampler_name)
        steps = self.hr_second_pass_steps or self.steps
        total_steps = sampler_config.total_steps(steps) if sampler_config else steps
        self.hr_uc = self.get_conds_with_caching(prompt_parser.get_learned_conditioning, hr_negative_prompts, self.firstpass_steps, [self.cached_hr_uc, self.cached_uc], self.hr_extra_network_data, total_steps)
        self.hr_c = self.get_conds_with_caching(prompt_parser.get_multicond_learned_conditioning, hr_prompts, self.firstpass_steps, [self.cached_hr_c, self.cached_c], self.hr_extra_network_data, total_steps)

    def setup_conds(self):
        if self.is_hr_pass:
            self.hr_c = None
            self.calculate_hr_conds()
            return
        super().setup_conds()
        # The hires conds depend on the hires steps; they are computed when the hires pass starts.
        self.hr_uc = None
        self.hr_c = None

    def get_conds(self):
        if self.is_hr_pass:
            return self.hr_c, self.hr_uc
        return super().get_conds()

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        if self.firstpass_image is not None and self.enable_hr:
            # "Upscale this image with hires fix": start from a given first-pass image.
            image = image_to_tensor(self.firstpass_image.convert("RGB"))[None]
            if self.latent_scale_mode is None:
                return self.sample_hr_pass(None, image, seeds, subseeds, subseed_strength, prompts)
            samples = images_tensor_to_samples(image, model=self.sd_model)
        else:
            x = self.rng.next()
            if self.scripts is not None:
                self.scripts.process_before_every_sampling(self, x=x, noise=x, c=conditioning, uc=unconditional_conditioning)
            samples = self.sampler.sample(self, x, conditioning, unconditional_conditioning, image_conditioning=self.txt2img_image_conditioning(x))
            del x
        if not self.enable_hr:
            return samples
        devices.torch_gc()
        if self.latent_scale_mode is None:
            decoded = latents_to_image_tensors(self.sd_model, samples)
        else:
            decoded = None
        with torch.inference_mode():
            return self.sample_hr_pass(samples, decoded, seeds, subseeds, subseed_strength, prompts)

    def switch_to_hires_checkpoint(self):
        """The second pass runs on the "Hires checkpoint" when one is chosen (A1111); the next batch and the end of the
        job go back to the selected one (processing.back_to_the_job_checkpoint, process_images)."""
        if self.hr_checkpoint_info is None:
            return
        sd_models.reload_model_weights(info=self.hr_checkpoint_info)
        self.sd_model = shared.sd_model
        # written after the load, which hashes a file used for the first time: its short title then has the hash
        self.extra_generation_params["Hires checkpoint"] = self.hr_checkpoint_info.short_title

    def sample_hr_pass(self, samples, decoded_samples, seeds, subseeds, subseed_strength, prompts):
        if shared.state.interrupted:
            return samples
        self.switch_to_hires_checkpoint()
        self.is_hr_pass = True
        target_width, target_height = self.hr_upscale_to_x, self.hr_upscale_to_y

        if self.scripts is not None:
            self.scripts.before_hr(self)

        if opts.save_images_before_highres_fix and not self.do_not_save_samples and decoded_samples is not None:
            for i, x_sample in enumerate(decoded_samples):
                images.save_image(tensor_to_image(x_sample), self.outpath_samples, "", seeds[i], prompts[i], opts.samples_format, suffix="-before-highres-fix", p=self)

        if self.latent_scale_mode is not None:
            samples = torch.nn.functional.interpolate(samples, size=(target_height // opt_f, target_width // opt_f),
                                                      mode=self.latent_scale_mode["mode"], antialias=self.latent_scale_mode["antialias"])
            if getattr(self, "inpainting_mask_weight", opts.inpainting_mask_weight) < 1.0:
                image_conditioning = self.img2img_image_conditioning(torch.stack(decode_latent_batch(self.sd_model, samples)), samples)
            else:
                image_conditioning = self.txt2img_image_conditioning(samples, target_width, target_height)
        else:
            upscaled = []
            for x_sample in decoded_samples:
                image = tensor_to_image(x_sample)
                image = images.resize_image(0, image, target_width, target_height, upscaler_name=self.hr_upscaler)
                upscaled.append(image_to_tensor(image))
            decoded = torch.stack(upscaled)
            samples = images_tensor_to_samples(decoded, model=self.sd_model)
            image_conditioning = self.img2img_image_conditioning(decoded.to(shared.device) * 2 - 1, samples)

        shared.state.nextjob()

        self.sampler = sd_samplers.create_sampler(self.hr_sampler_name or self.sampler_name, self.sd_model)
        samples = samples[:, :, self.truncate_y // 2:samples.shape[2] - (self.truncate_y + 1) // 2,
                          self.truncate_x // 2:samples.shape[3] - (self.truncate_x + 1) // 2]
        self.rng = rng.ImageRNG(samples.shape[1:], self.seeds, subseeds=self.subseeds, subseed_strength=self.subseed_strength,
                                seed_resize_from_h=self.seed_resize_from_h, seed_resize_from_w=self.seed_resize_from_w)
        noise = self.rng.next()

        devices.torch_gc()
        if not self.disable_extra_networks:
            from modules import extra_networks
            extra_networks.activate(self, self.hr_extra_network_data)  # the hires prompt's networks, as A1111
        self.calculate_hr_conds()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(self, x=samples, noise=noise, c=self.hr_c, uc=self.hr_uc)
        samples = self.sampler.sample_img2img(self, samples, noise, self.hr_c, self.hr_uc,
                                              steps=self.hr_second_pass_steps or self.steps, image_conditioning=image_conditioning)
        self.sampler = None
        devices.torch_gc()
        self.is_hr_pass = False
        return samples

    def close(self):
        super().close()
        self.hr_c = None
        self.hr_uc = None

