"""img2img and inpainting, in A1111's order of operations (reference §1.3 "Inpainting pipeline")."""
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from modules import devices, shared
from modules.processing import StableDiffusionProcessing, opt_f, images_tensor_to_samples, image_to_tensor
from modules.processing_helpers import create_binary_mask, gaussian_blur_mask, flatten_to_rgb, image_hash, setup_color_correction
from modules.shared import opts, state

MAX_IMAGE_PIXELS = 8192 * 8192


def get_crop_region(mask_array, pad=0):
    """Bounding box (x1, y1, x2, y2) of the non-zero mask pixels, grown by `pad` and clamped to the image."""
    ys, xs = np.nonzero(mask_array)
    if len(xs) == 0:
        return None
    h, w = mask_array.shape
    return (max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0),
            min(int(xs.max()) + 1 + pad, w), min(int(ys.max()) + 1 + pad, h))


def expand_crop_region(crop_region, processing_width, processing_height, image_width, image_height):
    """Grow the crop box around its centre to the processing aspect ratio, shifted to stay inside the image."""
    x1, y1, x2, y2 = crop_region
    ratio_crop = (x2 - x1) / (y2 - y1)
    ratio_processing = processing_width / processing_height
    if ratio_crop > ratio_processing:
        desired_height = (x2 - x1) / ratio_processing
        diff = int(desired_height - (y2 - y1))
        y1 -= diff // 2
        y2 += diff - diff // 2
        if y2 >= image_height:
            diff = y2 - image_height
            y2 -= diff
            y1 -= diff
        if y1 < 0:
            y2 -= y1
            y1 = 0
        if y2 >= image_height:
            y2 = image_height
    else:
        desired_width = (y2 - y1) * ratio_processing
        diff = int(desired_width - (x2 - x1))
        x1 -= diff // 2
        x2 += diff - diff // 2
        if x2 >= image_width:
            diff = x2 - image_width
            x2 -= diff
            x1 -= diff
        if x1 < 0:
            x2 -= x1
            x1 = 0
        if x2 >= image_width:
            x2 = image_width
    return x1, y1, x2, y2


def fill(image, mask):
    """A1111's "fill" masked content: the masked area painted with progressively blurred surroundings."""
    from PIL import ImageFilter
    image_mod = Image.new("RGBA", (image.width, image.height))
    image_masked = Image.new("RGBa", (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    image_masked = image_masked.convert("RGBa")
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        blurred = image_masked.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            image_mod.alpha_composite(blurred)
    return image_mod.convert("RGB")


@dataclass(repr=False)
class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    init_images: list = None
    resize_mode: int = 0
    denoising_strength: float = 0.75
    image_cfg_scale: float = None
    mask: Any = None
    mask_blur_x: int = 4
    mask_blur_y: int = 4
    mask_blur: int = None
    mask_round: bool = True
    inpainting_fill: int = 0
    inpaint_full_res: bool = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0
    initial_noise_multiplier: float = None
    latent_mask: Image.Image = None
    force_task_id: str = None

    image_mask: Any = field(default=None, init=False)
    nmask: torch.Tensor = field(default=None, init=False)
    image_conditioning: torch.Tensor = field(default=None, init=False)
    init_img_hash: str = field(default=None, init=False)
    mask_for_overlay: Image.Image = field(default=None, init=False)
    init_latent: torch.Tensor = field(default=None, init=False)

    def __post_init__(self):
        super().__post_init__()
        self.image_mask = self.mask
        self.mask = None
        self.initial_noise_multiplier = opts.initial_noise_multiplier if self.initial_noise_multiplier is None else self.initial_noise_multiplier

    @property
    def mask_blur(self):
        if self.mask_blur_x == self.mask_blur_y:
            return self.mask_blur_x
        return None

    @mask_blur.setter
    def mask_blur(self, value):
        if isinstance(value, int):
            self.mask_blur_x = value
            self.mask_blur_y = value

    def expected_sampler_steps(self):
        if opts.img2img_fix_steps or self.denoising_strength is None:
            return self.steps
        return int(min(self.denoising_strength, 0.999) * self.steps) + 1

    def init(self, all_prompts, all_seeds, all_subseeds):
        from modules import images, sd_samplers
        self.extra_generation_params["Denoising strength"] = self.denoising_strength
        self.image_cfg_scale = None  # instruct-pix2pix models are not supported; the field stays for scripts
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        if not self.init_images:
            raise ValueError("img2img needs an init image: none was given.")

        crop_region = None
        image_mask = self.image_mask
        if image_mask is not None:
            image_mask = create_binary_mask(image_mask, round=self.mask_round)
            if self.inpainting_mask_invert:
                image_mask = ImageOps.invert(image_mask)
                self.extra_generation_params["Mask mode"] = "Inpaint not masked"
            if self.mask_blur_x > 0 or self.mask_blur_y > 0:
                image_mask = gaussian_blur_mask(image_mask, self.mask_blur_x, self.mask_blur_y)
                self.extra_generation_params["Mask blur"] = self.mask_blur if self.mask_blur is not None else f"{self.mask_blur_x}x{self.mask_blur_y}"

            first = self.init_images[0]
            if image_mask.size != first.size:
                raise ValueError(f"The mask is {image_mask.width}x{image_mask.height} but the image is {first.width}x{first.height}; they must be the same size.")

            mask_array = np.array(image_mask)
            if not mask_array.any():
                self.comment("Mask is empty: the image was processed as plain img2img.")
                image_mask = None
            elif self.inpaint_full_res:
                self.mask_for_overlay = image_mask
                crop_region = get_crop_region(mask_array, self.inpaint_full_res_padding)
                crop_region = expand_crop_region(crop_region, self.width, self.height, image_mask.width, image_mask.height)
                x1, y1, x2, y2 = crop_region
                image_mask = image_mask.crop(crop_region)
                image_mask = images.resize_image(2, image_mask, self.width, self.height)
                self.paste_to = (x1, y1, x2 - x1, y2 - y1)
                self.extra_generation_params["Inpaint area"] = "Only masked"
                self.extra_generation_params["Masked area padding"] = self.inpaint_full_res_padding
            else:
                image_mask = images.resize_image(self.resize_mode, image_mask, self.width, self.height)
                np_mask = np.array(image_mask)
                np_mask = np.clip((np_mask.astype(np.float32)) * 2, 0, 255).astype(np.uint8)
                self.mask_for_overlay = Image.fromarray(np_mask)
            self.overlay_images = []
        self.image_mask = image_mask

        latent_mask = self.latent_mask if self.latent_mask is not None else image_mask
        add_color_corrections = opts.img2img_color_correction and self.color_corrections is None
        if add_color_corrections:
            self.color_corrections = []

        imgs = []
        for img in self.init_images:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"The init image is {img.width}x{img.height}, larger than this app processes ({MAX_IMAGE_PIXELS // 1_000_000} MP).")
            if opts.save_init_img:
                self.init_img_hash = image_hash(img)
                images.save_image(img, opts.outdir_init_images, None, forced_filename=self.init_img_hash, save_to_dirs=False, existing_info=img.info)
            image = flatten_to_rgb(img, opts.img2img_background_color)
            if crop_region is None and self.resize_mode != 3:
                image = images.resize_image(self.resize_mode, image, self.width, self.height)
            if image_mask is not None:
                if self.mask_for_overlay.size != (image.width, image.height):
                    self.mask_for_overlay = self.mask_for_overlay.resize((image.width, image.height))
                image_masked = Image.new("RGBa", (image.width, image.height))
                image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(self.mask_for_overlay.convert("L")))
                self.overlay_images.append(image_masked.convert("RGBA"))
            if crop_region is not None:
                image = image.crop(crop_region)
                image = images.resize_image(2, image, self.width, self.height)
            if image_mask is not None and self.inpainting_fill != 1:
                image = fill(image, latent_mask)
                if self.inpainting_fill == 0:
                    self.extra_generation_params["Masked content"] = "fill"
            if add_color_corrections:
                self.color_corrections.append(setup_color_correction(image))
            imgs.append(image_to_tensor(image))

        if len(imgs) == 1:
            batch_images = imgs[0][None].expand(self.batch_size, -1, -1, -1)
            if self.overlay_images is not None:
                self.overlay_images = self.overlay_images * self.batch_size
            if self.color_corrections is not None and len(self.color_corrections) == 1:
                self.color_corrections = self.color_corrections * self.batch_size
        elif len(imgs) <= self.batch_size:
            self.batch_size = len(imgs)
            batch_images = torch.stack(imgs)
        else:
            raise RuntimeError(f"bad number of images passed: {len(imgs)}; expecting {self.batch_size} or less")

        image = batch_images.to(shared.device, dtype=devices.dtype_vae)
        self.init_latent = images_tensor_to_samples(image, model=self.sd_model)
        devices.torch_gc()

        if self.resize_mode == 3:
            self.init_latent = torch.nn.functional.interpolate(self.init_latent, size=(self.height // opt_f, self.width // opt_f), mode="bilinear")

        if image_mask is not None:
            init_mask = latent_mask
            latmask = init_mask.convert("RGB").resize((self.init_latent.shape[3], self.init_latent.shape[2]))
            latmask = np.moveaxis(np.array(latmask, dtype=np.float32), 2, 0) / 255
            latmask = latmask[0]
            if self.mask_round:
                latmask = np.around(latmask)
            latmask = np.tile(latmask[None], (self.init_latent.shape[1], 1, 1))
            self.mask = torch.asarray(1.0 - latmask).to(shared.device).type(self.init_latent.dtype)
            self.nmask = torch.asarray(latmask).to(shared.device).type(self.init_latent.dtype)
            if self.inpainting_fill == 2:
                from modules.processing_helpers import create_random_tensors
                noise = create_random_tensors(self.init_latent.shape[1:], all_seeds[0:self.init_latent.shape[0]])
                self.init_latent = self.init_latent * self.mask + noise.to(self.init_latent) * self.nmask
                self.extra_generation_params["Masked content"] = "latent noise"
            elif self.inpainting_fill == 3:
                self.init_latent = self.init_latent * self.mask
                self.extra_generation_params["Masked content"] = "latent nothing"

        self.image_conditioning = self.img2img_image_conditioning(image * 2 - 1, self.init_latent, image_mask, self.mask_round)

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        x = self.rng.next()
        if self.initial_noise_multiplier != 1.0:
            self.extra_generation_params["Noise multiplier"] = self.initial_noise_multiplier
            x *= self.initial_noise_multiplier
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(self, x=self.init_latent, noise=x, c=conditioning, uc=unconditional_conditioning)
        samples = self.sampler.sample_img2img(self, self.init_latent, x, conditioning, unconditional_conditioning, image_conditioning=self.image_conditioning)
        if self.mask is not None:
            blended = samples * self.nmask + self.init_latent * self.mask
            if self.scripts is not None:
                from modules import scripts
                mba = scripts.MaskBlendArgs(samples, self.nmask, self.init_latent, self.mask, blended)
                self.scripts.on_mask_blend(self, mba)
                blended = mba.blended_latent
            samples = blended
        del x
        devices.torch_gc()
        return samples

    def get_token_merging_ratio(self, for_hr=False):
        return self.token_merging_ratio or ("token_merging_ratio" in self.override_settings and opts.token_merging_ratio) or opts.token_merging_ratio_img2img or opts.token_merging_ratio
