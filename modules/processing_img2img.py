"""img2img and inpainting, in A1111's order of operations (reference §1.3 "Inpainting pipeline").

Scripts (outpainting, SD upscale, loopback, extensions) build this object with A1111's field names and call
`processing.process_images(p)` themselves, so the fields, their defaults and their meaning follow A1111.
"""
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from modules import devices, images, masking, scripts, sd_samplers, shared
from modules.latent_codec import images_tensor_to_samples
from modules.processing_request import RequestError
from modules.processing import StableDiffusionProcessing, opt_f
from modules.processing_helpers import (
    create_binary_mask, create_random_tensors, flatten_to_rgb, gaussian_blur_mask, image_hash, image_to_tensor, mask_to_pil,
    setup_color_correction,
)
from modules.shared import opts

# Re-exported under the names A1111 scripts use.
get_crop_region = masking.get_crop_region
expand_crop_region = masking.expand_crop_region
fill = masking.fill

# Inputs bigger than this are refused with a message rather than exhausting memory (they are resized before use
# except with "Just resize (latent upscale)", which encodes the image at its own size).
MAX_INIT_IMAGE_PIXELS = 16384 * 16384
MAX_LATENT_RESIZE_PIXELS = 4096 * 4096

RESIZE_MODES = ["Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)"]
INPAINTING_FILL_NAMES = ["fill", "original", "latent noise", "latent nothing"]
# Masks whose aspect ratio differs from the image's by less than this are resized to the image.
ASPECT_TOLERANCE = 0.02


def _index_option(value, names, field_name):
    """An option given as its index or its label -> the index; anything else is a clear error."""
    if isinstance(value, str):
        lowered = [n.lower() for n in names]
        if value.lower() in lowered:
            return lowered.index(value.lower())
        try:
            value = int(value)
        except ValueError:
            raise RequestError(field_name, f"{field_name} must be one of {names} (or 0-{len(names) - 1}), got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < len(names):
        raise RequestError(field_name, f"{field_name} must be one of {names} (or 0-{len(names) - 1}), got {value!r}")
    return int(value)


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
    unchanged_images: torch.Tensor = field(default=None, init=False)

    def __post_init__(self):
        super().__post_init__()
        self.image_mask = self.mask
        self.mask = None
        self.initial_noise_multiplier = opts.initial_noise_multiplier if self.initial_noise_multiplier is None else self.initial_noise_multiplier

    # A1111 keeps mask_blur as a property over mask_blur_x / mask_blur_y (the dataclass default is this property,
    # which the setter ignores).
    @property
    def mask_blur(self):
        if self.mask_blur_x == self.mask_blur_y:
            return self.mask_blur_x
        return None

    @mask_blur.setter
    def mask_blur(self, value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.mask_blur_x = value
            self.mask_blur_y = value

    def expected_sampler_steps(self):
        if opts.img2img_fix_steps or self.denoising_strength is None:
            return self.steps
        return int(min(self.denoising_strength, 0.999) * self.steps) + 1

    # ------------------------------------------------------------------------------------------- input checks

    def _check_fields(self):
        try:
            strength = float(self.denoising_strength)
        except (TypeError, ValueError):
            raise RequestError("denoising_strength", f"denoising_strength must be a number between 0 and 1, got {self.denoising_strength!r}") from None
        if not 0.0 <= strength <= 1.0:
            raise RequestError("denoising_strength", f"denoising_strength must be between 0 and 1, got {strength}")
        self.denoising_strength = strength
        self.resize_mode = _index_option(self.resize_mode, RESIZE_MODES, "resize_mode")
        self.inpainting_fill = _index_option(self.inpainting_fill, INPAINTING_FILL_NAMES, "inpainting_fill")
        if int(self.width) < opt_f or int(self.height) < opt_f:
            raise RequestError("width", f"width and height must be at least {opt_f}, got {self.width}x{self.height}")
        for name in ("mask_blur_x", "mask_blur_y", "inpaint_full_res_padding"):
            value = getattr(self, name)
            if value is None or value < 0:
                raise RequestError(name, f"{name} must be 0 or more, got {value!r}")

    def _checked_init_images(self):
        if self.init_images is None or (isinstance(self.init_images, (list, tuple)) and len(self.init_images) == 0):
            raise ValueError("img2img needs an init image: none was given.")
        if not isinstance(self.init_images, (list, tuple)):
            self.init_images = [self.init_images]
        checked = []
        for i, img in enumerate(self.init_images):
            name = f"init image {i + 1}" if len(self.init_images) > 1 else "The init image"
            if isinstance(img, np.ndarray):
                img = mask_to_pil(img, name)
            if not isinstance(img, Image.Image):
                raise TypeError(f"{name} must be a PIL image, not {type(img).__name__}")
            if img.width <= 0 or img.height <= 0:
                raise ValueError(f"{name} is empty ({img.width}x{img.height}).")
            if img.width * img.height > MAX_INIT_IMAGE_PIXELS:
                raise ValueError(f"{name} is {img.width}x{img.height}, larger than this app accepts "
                                 f"({MAX_INIT_IMAGE_PIXELS // 1_000_000} MP); scale it down first.")
            if self.resize_mode == 3 and img.width * img.height > MAX_LATENT_RESIZE_PIXELS:
                raise ValueError(f"{name} is {img.width}x{img.height}: too large for \"Just resize (latent upscale)\", "
                                 f"which encodes the image at its own size. Use another resize mode.")
            checked.append(img)
        if self.resize_mode == 3 and len({img.size for img in checked}) > 1:
            raise ValueError("\"Just resize (latent upscale)\" needs every init image at the same size; "
                             + ", ".join(f"{img.width}x{img.height}" for img in checked) + " were given.")
        return checked

    def _mask_matching(self, mask, image):
        """The mask at the image's size: resized when only the resolution differs, an error when the shape does."""
        mask = mask_to_pil(mask)
        if mask.size == image.size:
            return mask
        mask_ratio, image_ratio = mask.width / mask.height, image.width / image.height
        if abs(mask_ratio - image_ratio) > ASPECT_TOLERANCE * image_ratio:
            raise RequestError("mask", f"The mask is {mask.width}x{mask.height} but the init image is {image.width}x{image.height}: "
                             f"they must have the same size (or at least the same aspect ratio).")
        self.comment(f"The mask ({mask.width}x{mask.height}) was resized to the image's size ({image.width}x{image.height}).")
        if mask.mode not in ("L", "RGB", "RGBA"):
            mask = create_binary_mask(mask, round=False)
        return mask.resize(image.size, resample=Image.BILINEAR)

    # ------------------------------------------------------------------------------------------------ init

    def init(self, all_prompts, all_seeds, all_subseeds):
        self._check_fields()
        self.extra_generation_params["Denoising strength"] = self.denoising_strength
        # instruct-pix2pix ("edit") models are not supported; the field stays for scripts
        self.image_cfg_scale = self.image_cfg_scale if getattr(self.sd_model, "cond_stage_key", None) == "edit" else None
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        init_images = self._checked_init_images()

        self._reset_run_state()
        crop_region = None
        image_mask = self.image_mask
        if image_mask is not None and image_mask is getattr(self, "_processed_mask", None):
            # p is run again (loopback, batch): start from the mask the caller gave, not the blurred crop of it
            image_mask = self._source_mask
        self._source_mask = image_mask
        if image_mask is not None:
            image_mask = self._mask_matching(image_mask, init_images[0])
            image_mask = create_binary_mask(image_mask, round=self.mask_round)
            if self.inpainting_mask_invert:
                image_mask = ImageOps.invert(image_mask)
                self.extra_generation_params["Mask mode"] = "Inpaint not masked"
            if self.mask_blur_x > 0 or self.mask_blur_y > 0:
                image_mask = gaussian_blur_mask(image_mask, self.mask_blur_x, self.mask_blur_y)
                self.extra_generation_params["Mask blur"] = self.mask_blur if self.mask_blur is not None else f"{self.mask_blur_x}x{self.mask_blur_y}"

            if image_mask.getbbox() is None:
                # Nothing to repaint: the whole image is processed as img2img, and the user is told.
                self.comment("The mask is empty (nothing to inpaint): the image was processed as plain img2img.")
                image_mask = None
            elif self.inpaint_full_res:
                self.mask_for_overlay = image_mask
                crop_region = masking.get_crop_region_v2(image_mask, self.inpaint_full_res_padding)
                crop_region = masking.expand_crop_region(crop_region, self.width, self.height, image_mask.width, image_mask.height)
                x1, y1, x2, y2 = crop_region
                image_mask = images.resize_image(2, image_mask.crop(crop_region), self.width, self.height)
                self.paste_to = (x1, y1, x2 - x1, y2 - y1)
                self.extra_generation_params["Inpaint area"] = "Only masked"
                self.extra_generation_params["Masked area padding"] = self.inpaint_full_res_padding
                for i, img in enumerate(init_images[1:], start=2):
                    if img.size != init_images[0].size:
                        raise ValueError(f"Inpainting \"Only masked\" needs every init image at the mask's size "
                                         f"{init_images[0].width}x{init_images[0].height}; init image {i} is {img.width}x{img.height}.")
            else:
                image_mask = images.resize_image(self.resize_mode, image_mask, self.width, self.height)
                np_mask = np.clip(np.asarray(image_mask).astype(np.float32) * 2, 0, 255).astype(np.uint8)
                self.mask_for_overlay = Image.fromarray(np_mask)
            if image_mask is not None:
                self.overlay_images = []
        self.image_mask = image_mask
        self._processed_mask = image_mask

        latent_mask = self.latent_mask if self.latent_mask is not None else image_mask
        if latent_mask is not None and self.latent_mask is not None:
            latent_mask = create_binary_mask(mask_to_pil(latent_mask, "latent_mask"), round=False)
        add_color_corrections = opts.img2img_color_correction and self.color_corrections is None
        if add_color_corrections:
            self.color_corrections = []

        imgs = []
        unchanged = []
        for img in init_images:
            if opts.save_init_img:
                self.init_img_hash = image_hash(img)
                images.save_image(img, opts.outdir_init_images, None, forced_filename=self.init_img_hash, save_to_dirs=False, existing_info=img.info)
            image = flatten_to_rgb(img, opts.img2img_background_color, name="init image")
            if crop_region is None and self.resize_mode != 3:
                image = images.resize_image(self.resize_mode, image, self.width, self.height)
            # What the output is made of outside the repainted area: the image at the output's size.
            full_image = image
            if crop_region is None and image.size != (self.width, self.height):  # latent upscale resizes later
                full_image = images.resize_image(0, image, self.width, self.height)
            unchanged.append(full_image)
            if image_mask is not None:
                if self.mask_for_overlay.size != full_image.size:
                    self.mask_for_overlay = images.resize_image(self.resize_mode if self.resize_mode != 3 else 0, self.mask_for_overlay, full_image.width, full_image.height)
                image_masked = Image.new("RGBa", full_image.size)
                image_masked.paste(full_image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(self.mask_for_overlay.convert("L")))
                self.overlay_images.append(image_masked.convert("RGBA"))
            if crop_region is not None:
                image = images.resize_image(2, image.crop(crop_region), self.width, self.height)
            if image_mask is not None and self.inpainting_fill != 1:
                image = masking.fill(image, latent_mask)
                if self.inpainting_fill == 0:
                    self.extra_generation_params["Masked content"] = "fill"
            if add_color_corrections:
                self.color_corrections.append(setup_color_correction(image))
            imgs.append(image_to_tensor(image))

        if len(imgs) == 1:
            batch_images = imgs[0][None].expand(self.batch_size, -1, -1, -1)
            unchanged = unchanged * self.batch_size
            if self.overlay_images is not None:
                self.overlay_images = self.overlay_images * self.batch_size
            if self.color_corrections is not None and len(self.color_corrections) == 1:
                self.color_corrections = self.color_corrections * self.batch_size
        elif len(imgs) <= self.batch_size:
            self.batch_size = len(imgs)
            batch_images = torch.stack(imgs)
        else:
            raise RequestError("init_images", f"bad number of images passed: {len(imgs)}; expecting {self.batch_size} or less "
                                              f"(one init image, or at most batch_size of them)")

        if self.denoising_strength == 0:
            self._init_unchanged(unchanged)
            return

        image = batch_images.to(shared.device, dtype=devices.dtype_vae)
        self.init_latent = images_tensor_to_samples(image, model=self.sd_model)
        devices.torch_gc()

        if self.resize_mode == 3:
            self.init_latent = torch.nn.functional.interpolate(self.init_latent, size=(self.height // opt_f, self.width // opt_f), mode="bilinear")

        if image_mask is not None:
            self._init_latent_mask(latent_mask, all_seeds)

        self.image_conditioning = self.img2img_image_conditioning(image * 2 - 1, self.init_latent, image_mask, self.mask_round)

    def _reset_run_state(self):
        """Forget what an earlier run of this same object computed (scripts call process_images on p repeatedly)."""
        self.mask = None
        self.nmask = None
        self.paste_to = None
        self.overlay_images = None
        self.mask_for_overlay = None
        self.unchanged_images = None
        self.init_latent = None
        self.image_conditioning = None

    def _init_latent_mask(self, latent_mask, all_seeds):
        """mask = where the init latent is kept, nmask = where it is repainted; and the latent masked contents."""
        latent_h, latent_w = self.init_latent.shape[2], self.init_latent.shape[3]
        latmask = latent_mask.convert("RGB").resize((latent_w, latent_h))
        latmask = np.moveaxis(np.array(latmask, dtype=np.float32), 2, 0)[0] / 255
        if self.mask_round:
            latmask = np.around(latmask)
        latmask = np.tile(latmask[None], (self.init_latent.shape[1], 1, 1))
        # where the init latent is, which the masks are blended with at every step
        self.mask = torch.asarray(1.0 - latmask).to(device=self.init_latent.device, dtype=self.init_latent.dtype)
        self.nmask = torch.asarray(latmask).to(device=self.init_latent.device, dtype=self.init_latent.dtype)
        if self.inpainting_fill == 2:
            noise = create_random_tensors(self.init_latent.shape[1:], all_seeds[0:self.init_latent.shape[0]])
            self.init_latent = self.init_latent * self.mask + noise.to(self.init_latent) * self.nmask
            self.extra_generation_params["Masked content"] = "latent noise"
        elif self.inpainting_fill == 3:
            self.init_latent = self.init_latent * self.mask
            self.extra_generation_params["Masked content"] = "latent nothing"

    def _init_unchanged(self, unchanged):
        """Denoising strength 0 changes nothing: the result is the input image itself, not a VAE round trip."""
        self.unchanged_images = torch.stack([image_to_tensor(img) for img in unchanged])
        self.overlay_images = None
        self.paste_to = None
        self.mask_for_overlay = None
        self.color_corrections = None
        self.mask = None
        self.nmask = None

    # ---------------------------------------------------------------------------------------------- sample

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        if self.unchanged_images is not None:
            decoded = self.unchanged_images[:len(seeds)].clone()
            decoded.already_decoded = True  # process_images skips the VAE decode
            return decoded

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
                mba = scripts.MaskBlendArgs(samples, self.nmask, self.init_latent, self.mask, blended)
                self.scripts.on_mask_blend(self, mba)
                blended = mba.blended_latent
            samples = blended
        del x
        devices.torch_gc()
        return samples

    def get_token_merging_ratio(self, for_hr=False):
        return self.token_merging_ratio or ("token_merging_ratio" in self.override_settings and opts.token_merging_ratio) or opts.token_merging_ratio_img2img or opts.token_merging_ratio
