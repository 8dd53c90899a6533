"""The generation pipeline: processing objects with A1111's field names, and `process_images(p)`.

Scripts and extensions build these objects and call `process_images` themselves, so the names, defaults and the
order of hooks follow A1111 (reference §1.2, §1.3, §4.3, §9.1).
"""
import json
import os
import random
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from modules import (
    cpu_threading, devices, errors, extra_networks, face_restoration, images, processing_request, prompt_comments,
    prompt_parser, rng, scripts, sd_hijack, sd_models, sd_samplers, sd_vae, shared,
)
from modules.latent_codec import (  # noqa: F401  (A1111 exports these from processing)
    approximation_indexes, decode_first_stage, decode_latent_batch, encode_first_stage, images_tensor_to_samples,
    latents_to_image_tensors, samples_to_images_tensor,
)
from modules.processing_helpers import (  # noqa: F401  (A1111 exports these from processing)
    apply_color_correction, apply_overlay, create_binary_mask, create_random_tensors, setup_color_correction,
    image_to_tensor, tensor_to_image,
)
from modules.processing_infotext import create_infotext  # noqa: F401
from modules.shared import opts, state

opt_C = 4
opt_f = 8


class NoModelError(RuntimeError):
    """Raised when generation is asked for while no checkpoint is loaded."""


def no_model_message():
    folder = os.path.join(shared.models_path, "Stable-diffusion")
    return (f"No Stable Diffusion checkpoint is loaded. Put a .safetensors or .ckpt file in {folder} "
            f"(or pass --ckpt-dir / --ckpt), then press the refresh button next to the checkpoint list.")


def get_fixed_seed(seed):
    """'' / None / non-numbers -> -1; -1 -> a random seed, as A1111."""
    if seed == "" or seed is None:
        seed = -1
    elif isinstance(seed, str):
        try:
            seed = int(seed)
        except ValueError:
            seed = -1
    if seed == -1:
        return int(random.randrange(4294967294))
    return int(seed)


def _switch_at(value):
    """The refiner's switch point as a number (a script's argument, unchecked by the request): a clear error."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise processing_request.RequestError("refiner_switch_at", f"refiner_switch_at must be a number, got {value!r}") from None


def fix_seed(p):
    p.seed = get_fixed_seed(p.seed)
    p.subseed = get_fixed_seed(p.subseed)


def get_seed_list(seed, count, subseed_strength):
    """Image i of a job uses seed+i, unless a variation seed is in use (then every image keeps `seed`)."""
    if isinstance(seed, list):
        return seed
    return [int(seed) + (i if subseed_strength == 0 else 0) for i in range(count)]


# The conditioning cache: the same prompts are never encoded twice with the same model and settings.
_cond_cache: dict = {}
_COND_CACHE_SIZE = 8


def _cond_cache_get(key, compute):
    if key in _cond_cache:
        value = _cond_cache.pop(key)
        _cond_cache[key] = value
        return value
    value = compute()
    _cond_cache[key] = value
    while len(_cond_cache) > _COND_CACHE_SIZE:
        _cond_cache.pop(next(iter(_cond_cache)))
    return value


def clear_cond_cache():
    _cond_cache.clear()


@dataclass(repr=False)
class StableDiffusionProcessing:
    sd_model: object = None
    outpath_samples: str = None
    outpath_grids: str = None
    prompt: str = ""
    prompt_for_display: str = None
    negative_prompt: str = ""
    styles: list = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    seed_enable_extras: bool = True
    sampler_name: str = None
    scheduler: str = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    restore_faces: bool = None
    tiling: bool = None
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    extra_generation_params: dict = None
    overlay_images: list = None
    eta: float = None
    do_not_reload_embeddings: bool = False
    denoising_strength: float = None
    ddim_discretize: str = None
    s_min_uncond: float = None
    s_churn: float = None
    s_tmax: float = None
    s_tmin: float = None
    s_noise: float = None
    override_settings: dict = None
    override_settings_restore_afterwards: bool = True
    sampler_index: int = None
    refiner_checkpoint: str = None
    refiner_switch_at: float = None
    token_merging_ratio = 0
    token_merging_ratio_hr = 0
    disable_extra_networks: bool = False
    firstpass_image: Image.Image = None

    scripts_value: Any = field(default=None, init=False)
    script_args_value: list = field(default=None, init=False)
    scripts_setup_complete: bool = field(default=False, init=False)

    comments: dict = None
    sampler: Any = field(default=None, init=False)
    is_using_inpainting_conditioning: bool = field(default=False, init=False)
    paste_to: tuple = field(default=None, init=False)
    is_hr_pass: bool = field(default=False, init=False)
    c: tuple = field(default=None, init=False)
    uc: tuple = field(default=None, init=False)
    rng: Any = field(default=None, init=False)
    step_multiplier: int = field(default=1, init=False)
    color_corrections: list = field(default=None, init=False)
    all_prompts: list = field(default=None, init=False)
    all_negative_prompts: list = field(default=None, init=False)
    all_seeds: list = field(default=None, init=False)
    all_subseeds: list = field(default=None, init=False)
    iteration: int = field(default=0, init=False)
    main_prompt: str = field(default=None, init=False)
    main_negative_prompt: str = field(default=None, init=False)
    prompts: list = field(default=None, init=False)
    negative_prompts: list = field(default=None, init=False)
    seeds: list = field(default=None, init=False)
    subseeds: list = field(default=None, init=False)
    extra_network_data: dict = field(default=None, init=False)
    user: str = field(default=None, init=False)
    sd_model_name: str = field(default=None, init=False)
    sd_model_hash: str = field(default=None, init=False)
    sd_vae_name: str = field(default=None, init=False)
    sd_vae_hash: str = field(default=None, init=False)
    is_api: bool = field(default=False, init=False)
    mask: Any = field(default=None, init=False)
    nmask: Any = field(default=None, init=False)
    init_latent: Any = field(default=None, init=False)
    image_conditioning: Any = field(default=None, init=False)
    sampler_noise_scheduler_override: Any = field(default=None, init=False)
    refiner_checkpoint_info: Any = field(default=None, init=False)
    job_timestamp: str = field(default=None, init=False)

    def __post_init__(self):
        if self.sampler_index is not None:
            print("sampler_index argument for StableDiffusionProcessing does not do anything; use sampler_name")
        self.comments = {} if self.comments is None else self.comments
        self.styles = [] if self.styles is None else self.styles
        self.extra_generation_params = {} if self.extra_generation_params is None else self.extra_generation_params
        self.override_settings = {} if self.override_settings is None else self.override_settings
        if self.sd_model is None:
            self.sd_model = shared.sd_model
        self.s_min_uncond = self.s_min_uncond if self.s_min_uncond is not None else opts.s_min_uncond
        self.s_churn = self.s_churn if self.s_churn is not None else opts.s_churn
        self.s_tmin = self.s_tmin if self.s_tmin is not None else opts.s_tmin
        self.s_tmax = (self.s_tmax if self.s_tmax is not None else opts.s_tmax) or float("inf")
        self.s_noise = self.s_noise if self.s_noise is not None else opts.s_noise
        self.cached_uc = StableDiffusionProcessing.cached_uc
        self.cached_c = StableDiffusionProcessing.cached_c
        self.prompt_for_display = self.prompt_for_display or None
        self.job_timestamp = state.job_timestamp

    # A1111 keeps these as class attributes that extensions may reset.
    cached_uc = [None, None]
    cached_c = [None, None]

    @property
    def scripts(self):
        return self.scripts_value

    @scripts.setter
    def scripts(self, value):
        self.scripts_value = value
        if self.scripts_value and self.script_args_value and not self.scripts_setup_complete:
            self.setup_scripts()

    @property
    def script_args(self):
        return self.script_args_value

    @script_args.setter
    def script_args(self, value):
        self.script_args_value = value
        if self.scripts_value and self.script_args_value and not self.scripts_setup_complete:
            self.setup_scripts()

    def setup_scripts(self):
        self.scripts_setup_complete = True
        self.scripts.setup_scrips(self, is_ui=not self.is_api)

    def comment(self, text):
        self.comments[text] = 1

    def txt2img_image_conditioning(self, x, width=None, height=None):
        """What the UNet's extra input channels get when there is no init image: nothing for 4-channel UNets (a
        dummy), a fully-masked grey image for inpainting UNets (as A1111), a grey image to edit for instruct-pix2pix."""
        variant = self.sd_model.variant
        self.is_using_inpainting_conditioning = variant == "inpainting"
        if variant == "base":
            return x.new_zeros(x.shape[0], 5, 1, 1, dtype=x.dtype, device=x.device)
        width = width or self.width
        height = height or self.height
        grey = torch.ones(x.shape[0], 3, height, width, device=x.device) * 0.5
        if variant == "instruct-pix2pix":
            return self.edit_image_conditioning(grey * 2 - 1).to(x.dtype)
        image_conditioning = images_tensor_to_samples(grey, model=self.sd_model)
        image_conditioning = torch.nn.functional.pad(image_conditioning, (0, 0, 0, 0, 1, 0), value=1.0)
        return image_conditioning.to(x.dtype)

    def edit_image_conditioning(self, source_image):
        """instruct-pix2pix's extra channels: the image to edit as the VAE encodes it (its mode, unscaled, as trained)."""
        vae = self.sd_model.first_stage_model
        return vae.encode(source_image.to(device=shared.device, dtype=vae.dtype)).mode()

    def inpainting_image_conditioning(self, source_image, latent_image, image_mask=None, round_image_mask=True):
        """The 5 extra channels of a 9-channel UNet: the mask and the encoded masked image."""
        self.is_using_inpainting_conditioning = True
        if image_mask is not None:
            if torch.is_tensor(image_mask):
                conditioning_mask = image_mask
            else:
                conditioning_mask = np.array(image_mask.convert("L")).astype(np.float32) / 255.0
                conditioning_mask = torch.from_numpy(conditioning_mask[None, None])
                if round_image_mask:
                    conditioning_mask = torch.round(conditioning_mask)
        else:
            conditioning_mask = source_image.new_ones(1, 1, *source_image.shape[-2:])
        conditioning_mask = conditioning_mask.to(device=source_image.device, dtype=source_image.dtype)
        weight = getattr(self, "inpainting_mask_weight", opts.inpainting_mask_weight)
        conditioning_image = torch.lerp(source_image, source_image * (1.0 - conditioning_mask), weight)
        # source_image is already in [-1, 1], so it is encoded as is (images_tensor_to_samples expects [0, 1])
        conditioning_image = encode_first_stage(self.sd_model, conditioning_image)
        # the encoder hands back its latents on the model's device, whatever device the source image was on
        conditioning_mask = torch.nn.functional.interpolate(conditioning_mask.to(conditioning_image.device), size=latent_image.shape[-2:])
        conditioning_mask = conditioning_mask.expand(conditioning_image.shape[0], -1, -1, -1)
        image_conditioning = torch.cat([conditioning_mask, conditioning_image], dim=1)
        return image_conditioning.to(shared.device).type(self.sd_model.dtype)

    def img2img_image_conditioning(self, source_image, latent_image, image_mask=None, round_image_mask=True):
        source_image = devices.cond_cast_float(source_image)
        if self.sd_model.variant == "instruct-pix2pix":
            return self.edit_image_conditioning(source_image)
        if self.sd_model.variant == "inpainting":
            return self.inpainting_image_conditioning(source_image, latent_image, image_mask=image_mask, round_image_mask=round_image_mask)
        return latent_image.new_zeros(latent_image.shape[0], 5, 1, 1)

    def init(self, all_prompts, all_seeds, all_subseeds):
        pass

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        raise NotImplementedError()

    def close(self):
        self.sampler = None
        self.c = None
        self.uc = None

    def get_token_merging_ratio(self, for_hr=False):
        if for_hr:
            return self.token_merging_ratio_hr or opts.token_merging_ratio_hr or self.token_merging_ratio or opts.token_merging_ratio
        return self.token_merging_ratio or opts.token_merging_ratio

    def setup_prompts(self):
        """Expand prompt/negative prompt (strings or lists) to one per image, with styles applied."""
        count = self.batch_size * self.n_iter
        if isinstance(self.prompt, list):
            self.all_prompts = self.prompt
        elif isinstance(self.negative_prompt, list):
            self.all_prompts = [self.prompt] * len(self.negative_prompt)
        else:
            self.all_prompts = count * [self.prompt]
        if isinstance(self.negative_prompt, list):
            self.all_negative_prompts = self.negative_prompt
        else:
            self.all_negative_prompts = [self.negative_prompt] * len(self.all_prompts)
        if len(self.all_prompts) != len(self.all_negative_prompts):
            raise RuntimeError(f"Received a different number of prompts ({len(self.all_prompts)}) and negative prompts ({len(self.all_negative_prompts)})")
        if self.styles and shared.prompt_styles is not None:
            self.all_prompts = [shared.prompt_styles.apply_styles_to_prompt(x, self.styles) for x in self.all_prompts]
            self.all_negative_prompts = [shared.prompt_styles.apply_negative_styles_to_prompt(x, self.styles) for x in self.all_negative_prompts]
        if opts.enable_prompt_comments:
            self.all_prompts = [prompt_comments.strip_comments(x) for x in self.all_prompts]
            self.all_negative_prompts = [prompt_comments.strip_comments(x) for x in self.all_negative_prompts]
        self.main_prompt = self.all_prompts[0]
        self.main_negative_prompt = self.all_negative_prompts[0]

    def cached_params(self, required_prompts, steps, extra_network_data, hires_steps=None, use_old_scheduling=False):
        """Everything that changes the conditioning for the same prompt text, SDXL's image size, crop and aesthetic
        scores included (the job's size, as in A1111's key: the hires pass reuses the first pass's conditioning when
        its prompts are the same). The model is held by a weak reference: the same file loaded again (in another
        precision, say) is another model, even where Python gives it the freed one's id."""
        info = self.sd_model.sd_checkpoint_info
        return (
            tuple(required_prompts), steps, hires_steps, use_old_scheduling, opts.CLIP_stop_at_last_layers,
            info.filename if info is not None else None, weakref.ref(self.sd_model), repr(extra_network_data), opts.emphasis,
            opts.comma_padding_backtrack, getattr(required_prompts, "is_negative_prompt", False), _embeddings_version(),
            self.width, self.height, opts.sdxl_crop_left, opts.sdxl_crop_top, opts.sdxl_refiner_low_aesthetic_score,
            opts.sdxl_refiner_high_aesthetic_score,
        )

    def get_conds_with_caching(self, function, required_prompts, steps, caches, extra_network_data, hires_steps=None):
        """Encode prompts once: the cache survives across batches and runs with the same model and settings."""
        use_old = opts.use_old_scheduling
        key = (function.__name__,) + self.cached_params(required_prompts, steps, extra_network_data, hires_steps, use_old)
        if not opts.persistent_cond_cache:
            for cache in caches:
                if cache[0] is not None and key == cache[0]:
                    return cache[1]
        # (extension-compat) An extension that changes how prompts are encoded (e.g. Cutoff, which hooks the text
        # encoder) gives p a fresh `p.cached_c = [None, None]`, as A1111 expects, to force a new encoding: then the
        # shared cache must be bypassed too, and the result kept only in p's own list.
        if not any(caches[0] is shared_list for shared_list in self._class_cond_caches()):
            with devices.autocast():
                caches[0][:] = [key, function(self.sd_model, required_prompts, steps, hires_steps, use_old)]
            return caches[0][1]
        with devices.autocast():
            return _cond_cache_get(key, lambda: function(self.sd_model, required_prompts, steps, hires_steps, use_old))

    def _class_cond_caches(self):
        """The class-level cond cache lists (A1111's cached_c/cached_uc/cached_hr_c/cached_hr_uc) of p's classes."""
        names = ("cached_c", "cached_uc", "cached_hr_c", "cached_hr_uc")
        return [vars(cls)[name] for cls in type(self).__mro__ for name in names if name in vars(cls)]

    def setup_conds(self):
        prompts = prompt_parser.SdConditioning(self.prompts, width=self.width, height=self.height)
        negative_prompts = prompt_parser.SdConditioning(self.negative_prompts, width=self.width, height=self.height, is_negative_prompt=True)
        sampler_config = sd_samplers.find_sampler_config(self.sampler_name)
        total_steps = sampler_config.total_steps(self.steps) if sampler_config else self.steps
        self.step_multiplier = total_steps // self.steps
        self.firstpass_steps = total_steps
        self.uc = self.get_conds_with_caching(prompt_parser.get_learned_conditioning, negative_prompts, total_steps, [self.cached_uc], self.extra_network_data)
        self.c = self.get_conds_with_caching(prompt_parser.get_multicond_learned_conditioning, prompts, total_steps, [self.cached_c], self.extra_network_data)

    def get_conds(self):
        return self.c, self.uc

    def parse_extra_network_prompts(self):
        self.prompts, self.extra_network_data = extra_networks.parse_prompts(self.prompts)

    def save_samples(self) -> bool:
        return opts.samples_save and not self.do_not_save_samples and (opts.save_incomplete_images or not state.interrupted and not state.skipped)

    def expected_sampler_steps(self):
        """Sampler steps one iteration runs (for the job-wide progress bar)."""
        return self.steps

    def largest_latent_pixels(self):
        """Latent pixels of the largest pass the job samples (txt2img's hires pass may be larger)."""
        return (self.width // opt_f) * (self.height // opt_f)


def _embeddings_version():
    """Changes whenever the set of loaded textual-inversion embeddings changes."""
    return tuple(sorted(sd_hijack.model_hijack.embedding_db.word_embeddings))


class Processed:
    """The result of `process_images`, with A1111's attribute names."""

    def __init__(self, p: StableDiffusionProcessing, images_list, seed=-1, info="", subseed=None, all_prompts=None,
                 all_negative_prompts=None, all_seeds=None, all_subseeds=None, index_of_first_image=0, infotexts=None,
                 comments=""):
        self.images = images_list
        self.prompt = p.prompt
        self.negative_prompt = p.negative_prompt
        self.seed = seed
        self.subseed = subseed
        self.subseed_strength = p.subseed_strength
        self.info = info
        self.comments = "".join(f"{comment}\n" for comment in p.comments)
        self.width = p.width
        self.height = p.height
        self.sampler_name = p.sampler_name
        self.cfg_scale = p.cfg_scale
        self.image_cfg_scale = getattr(p, "image_cfg_scale", None)
        self.steps = p.steps
        self.batch_size = p.batch_size
        self.restore_faces = p.restore_faces
        self.face_restoration_model = opts.face_restoration_model if p.restore_faces else None
        self.sd_model_name = p.sd_model_name
        self.sd_model_hash = p.sd_model_hash
        self.sd_vae_name = p.sd_vae_name
        self.sd_vae_hash = p.sd_vae_hash
        self.seed_resize_from_w = p.seed_resize_from_w
        self.seed_resize_from_h = p.seed_resize_from_h
        self.denoising_strength = getattr(p, "denoising_strength", None)
        self.extra_generation_params = p.extra_generation_params
        self.index_of_first_image = index_of_first_image
        self.styles = p.styles
        self.job_timestamp = state.job_timestamp
        self.clip_skip = opts.CLIP_stop_at_last_layers
        self.token_merging_ratio = p.token_merging_ratio
        self.token_merging_ratio_hr = p.token_merging_ratio_hr
        self.eta = p.eta
        self.ddim_discretize = p.ddim_discretize
        self.s_churn = p.s_churn
        self.s_tmin = p.s_tmin
        self.s_tmax = p.s_tmax
        self.s_noise = p.s_noise
        self.s_min_uncond = p.s_min_uncond
        self.sampler_noise_scheduler_override = p.sampler_noise_scheduler_override
        self.prompt = self.prompt if not isinstance(self.prompt, list) else self.prompt[0]
        self.negative_prompt = self.negative_prompt if not isinstance(self.negative_prompt, list) else self.negative_prompt[0]
        self.seed = int(self.seed if not isinstance(self.seed, list) else self.seed[0]) if self.seed is not None else -1
        self.subseed = int(self.subseed if not isinstance(self.subseed, list) else self.subseed[0]) if self.subseed is not None else -1
        self.is_using_inpainting_conditioning = p.is_using_inpainting_conditioning
        self.all_prompts = all_prompts or p.all_prompts or [self.prompt]
        self.all_negative_prompts = all_negative_prompts or p.all_negative_prompts or [self.negative_prompt]
        self.all_seeds = all_seeds or p.all_seeds or [self.seed]
        self.all_subseeds = all_subseeds or p.all_subseeds or [self.subseed]
        self.infotexts = infotexts or [info] * len(images_list)
        self.version = None

    def js(self):
        obj = {
            "prompt": self.all_prompts[0], "all_prompts": self.all_prompts, "negative_prompt": self.all_negative_prompts[0],
            "all_negative_prompts": self.all_negative_prompts, "seed": self.seed, "all_seeds": self.all_seeds,
            "subseed": self.subseed, "all_subseeds": self.all_subseeds, "subseed_strength": self.subseed_strength,
            "width": self.width, "height": self.height, "sampler_name": self.sampler_name, "cfg_scale": self.cfg_scale,
            "steps": self.steps, "batch_size": self.batch_size, "restore_faces": self.restore_faces,
            "face_restoration_model": self.face_restoration_model, "sd_model_name": self.sd_model_name,
            "sd_model_hash": self.sd_model_hash, "sd_vae_name": self.sd_vae_name, "sd_vae_hash": self.sd_vae_hash,
            "seed_resize_from_w": self.seed_resize_from_w, "seed_resize_from_h": self.seed_resize_from_h,
            "denoising_strength": self.denoising_strength, "extra_generation_params": self.extra_generation_params,
            "index_of_first_image": self.index_of_first_image, "infotexts": self.infotexts, "styles": self.styles,
            "job_timestamp": self.job_timestamp, "clip_skip": self.clip_skip,
            "is_using_inpainting_conditioning": self.is_using_inpainting_conditioning,
        }
        return json.dumps(obj, default=str)

    def infotext(self, p: StableDiffusionProcessing, index):
        return create_infotext(p, self.all_prompts, self.all_seeds, self.all_subseeds, comments=[], position_in_batch=index % self.batch_size, iteration=index // self.batch_size)

    def get_token_merging_ratio(self, for_hr=False):
        return self.token_merging_ratio_hr if for_hr else self.token_merging_ratio


def process_images(p: StableDiffusionProcessing) -> Processed:
    """Run a whole job: override settings for its duration, then the pipeline, then restore them."""
    if p.scripts is not None:
        p.scripts.before_process(p)
    stored_opts = {k: opts.data[k] if k in opts.data else opts.get_default(k) for k in p.override_settings.keys() if k in opts.data_labels}
    try:
        checkpoint_override = p.override_settings.get("sd_model_checkpoint")
        if checkpoint_override is not None:
            info = sd_models.get_closet_checkpoint_match(checkpoint_override)
            if info is None:
                p.override_settings.pop("sd_model_checkpoint", None)
            elif shared.sd_model is None or shared.sd_model.sd_checkpoint_info != info:
                sd_models.reload_model_weights(info=info)
                p.sd_model = shared.sd_model
        for k, v in p.override_settings.items():
            opts.set(k, v, is_api=True, run_callbacks=False)
            if k == "sd_vae":
                sd_vae.reload_vae_weights()
        base_model = shared.sd_model
        try:
            res = process_images_inner(p)
        finally:
            if base_model is not None and shared.sd_model is not base_model:
                # the refiner took over during sampling: the selected checkpoint is loaded again for what follows
                sd_models.reload_model_weights(info=base_model.sd_checkpoint_info)
                p.sd_model = shared.sd_model  # not the refiner, whose weights are freed
    finally:
        if p.override_settings_restore_afterwards:
            for k, v in stored_opts.items():
                setattr(opts, k, v)
                if k == "sd_vae":
                    sd_vae.reload_vae_weights()
    return res


@dataclass
class JobOutputs:
    """What a job has produced so far: images with their infotexts, and the inpainting masks shown after them."""
    images: list = field(default_factory=list)
    infotexts: list = field(default_factory=list)
    mask_images: list = field(default_factory=list)  # (image, infotext)


def process_images_inner(p: StableDiffusionProcessing) -> Processed:
    """The pipeline of one job: prepare, then each batch (see process_batch), then the grid and A1111's postprocess."""
    prepare_job(p)
    outputs = JobOutputs()
    with torch.inference_mode():
        with devices.autocast():
            p.init(p.all_prompts, p.all_seeds, p.all_subseeds)

        if state.job_count == -1:
            state.job_count = p.n_iter
        state.total_steps = p.n_iter * p.expected_sampler_steps()
        state.completed_steps = 0

        unet = p.sd_model.model.diffusion_model
        job_checkpoint = p.sd_model.sd_checkpoint_info
        with cpu_threading.threads_for_work(devices.device, cpu_threading.unet_work(unet, p.largest_latent_pixels(), p.batch_size)):
            for n in range(p.n_iter):
                p.iteration = n
                if state.skipped:
                    state.skipped = False
                if state.interrupted or state.stopping_generation:
                    break
                back_to_the_job_checkpoint(p, job_checkpoint)
                if not process_batch(p, n, outputs):
                    break

        p.color_corrections = None
        index_of_first_image = add_grid(p, outputs)
        for image, text in outputs.mask_images:
            outputs.images.append(image)
            outputs.infotexts.append(text)

    if not p.disable_extra_networks and p.extra_network_data:
        extra_networks.deactivate(p, p.extra_network_data)
    devices.torch_gc()

    res = Processed(p, images_list=outputs.images, seed=p.all_seeds[0], info=outputs.infotexts[0] if outputs.infotexts else "",
                    subseed=p.all_subseeds[0], index_of_first_image=index_of_first_image, infotexts=outputs.infotexts)
    if p.scripts is not None:
        p.scripts.postprocess(p, res)
    return res


def prepare_job(p):
    """Everything decided once per job: the model, seeds, prompts for every image, tiling, and the scripts' process."""
    # A model held from before a switch that freed it (an extension's stale shared.sd_model) gives way to the loaded
    # one, as in A1111, where p.sd_model is always shared.sd_model.
    if p.sd_model is None or sd_models.weights_freed(p.sd_model):
        p.sd_model = shared.sd_model
    if p.sd_model is None:
        raise NoModelError(no_model_message())
    if isinstance(p.prompt, list):
        assert len(p.prompt) > 0
    else:
        assert p.prompt is not None

    devices.torch_gc()
    # Scripts may pass explicit per-image seed lists (prompt matrix, X/Y/Z); -1 inside them is drawn too.
    seed = [get_fixed_seed(x) for x in p.seed] if isinstance(p.seed, list) else get_fixed_seed(p.seed)
    subseed = [get_fixed_seed(x) for x in p.subseed] if isinstance(p.subseed, list) else get_fixed_seed(p.subseed)
    _model_identity(p)

    if p.refiner_checkpoint not in (None, "", "None", "none"):
        p.refiner_checkpoint_info = processing_request.checkpoint_or_error("refiner_checkpoint", p.refiner_checkpoint)
        p.refiner_switch_at = _switch_at(p.refiner_switch_at)
    if p.tiling is None:
        p.tiling = opts.tiling
    if p.restore_faces is None:
        p.restore_faces = opts.face_restoration
    sd_hijack.model_hijack.apply_circular(bool(p.tiling))
    sd_hijack.model_hijack.clear_comments()
    sd_models.apply_alpha_schedule_override(p.sd_model, p)
    if opts.sd_vae_encode_method != "Full":
        p.extra_generation_params["VAE Encoder"] = opts.sd_vae_encode_method
    if opts.sd_vae_decode_method != "Full":
        p.extra_generation_params["VAE Decoder"] = opts.sd_vae_decode_method

    p.setup_prompts()
    count = len(p.all_prompts)
    p.all_seeds = get_seed_list(seed, count, p.subseed_strength)
    p.all_subseeds = subseed if isinstance(subseed, list) else [int(subseed) + i for i in range(count)]

    if p.scripts is not None:
        p.scripts.process(p)


def back_to_the_job_checkpoint(p, checkpoint_info):
    """Each batch starts on the job's own checkpoint: the refiner or the hires checkpoint may have taken over in the
    batch before (A1111 reloads the selected model at every batch for this)."""
    if checkpoint_info is not None and p.sd_model.sd_checkpoint_info.filename != checkpoint_info.filename:
        sd_models.reload_model_weights(info=checkpoint_info)
        p.sd_model = shared.sd_model


def _model_identity(p):
    info = p.sd_model.sd_checkpoint_info
    p.sd_model_name = (info.name_for_extra or info.model_name) if info is not None else None
    p.sd_model_hash = p.sd_model.sd_model_hash
    p.sd_vae_name = sd_vae.get_loaded_vae_name()
    p.sd_vae_hash = sd_vae.get_loaded_vae_hash()


def process_batch(p, n, outputs: JobOutputs) -> bool:
    """Batch n of the job: its prompts and seeds, extra networks, conditioning, sampling, decoding, then each image
    (see process_image). False when there is nothing left to do."""
    p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
    p.negative_prompts = p.all_negative_prompts[n * p.batch_size:(n + 1) * p.batch_size]
    p.seeds = p.all_seeds[n * p.batch_size:(n + 1) * p.batch_size]
    p.subseeds = p.all_subseeds[n * p.batch_size:(n + 1) * p.batch_size]
    if len(p.prompts) == 0:
        return False

    p.rng = rng.ImageRNG((p.sd_model.latent_channels, p.height // opt_f, p.width // opt_f), p.seeds, subseeds=p.subseeds,
                         subseed_strength=p.subseed_strength, seed_resize_from_h=p.seed_resize_from_h,
                         seed_resize_from_w=p.seed_resize_from_w)

    if p.scripts is not None:
        p.scripts.before_process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)

    p.parse_extra_network_prompts()
    if not p.disable_extra_networks:
        extra_networks.activate(p, p.extra_network_data)
    if p.scripts is not None:
        p.scripts.after_extra_networks_activate(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds, extra_network_data=p.extra_network_data)
        p.scripts.process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)

    p.setup_conds()
    p.extra_generation_params.update(sd_hijack.model_hijack.extra_generation_params)
    for comment in sd_hijack.model_hijack.comments:
        p.comment(comment)

    if n == 0 and not shared.cmd_opts.no_prompt_history:
        _write_params_txt(p)

    with devices.without_autocast() if devices.unet_needs_upcast else devices.autocast():
        samples = p.sample(conditioning=p.c, unconditional_conditioning=p.uc, seeds=p.seeds,
                           subseeds=p.subseeds, subseed_strength=p.subseed_strength, prompts=p.prompts)

    if p.scripts is not None:
        ps = scripts.PostSampleArgs(samples)
        p.scripts.post_sample(p, ps)
        samples = ps.samples

    if getattr(samples, "already_decoded", False):  # img2img at denoising strength 0 hands back the images
        x_samples = samples
    else:
        x_samples = latents_to_image_tensors(p.sd_model, samples)
    del samples

    # the batch's prompts again with their <lora:...> tags, which the infotext keeps (also without scripts)
    p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
    p.negative_prompts = p.all_negative_prompts[n * p.batch_size:(n + 1) * p.batch_size]
    if p.scripts is not None:
        p.scripts.postprocess_batch(p, x_samples, batch_number=n)
        p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
        p.negative_prompts = p.all_negative_prompts[n * p.batch_size:(n + 1) * p.batch_size]
        batch_params = scripts.PostprocessBatchListArgs(list(x_samples))
        p.scripts.postprocess_batch_list(p, batch_params, batch_number=n)
        x_samples = batch_params.images

    for i, x_sample in enumerate(x_samples):
        process_image(p, i, x_sample, outputs)

    del x_samples
    devices.torch_gc()
    state.nextjob()
    return True


def batch_infotext(p, index=0, use_main_prompt=False):
    """The infotext of image `index` of the current batch (or of the whole job, for the grid)."""
    return create_infotext(p, p.prompts, p.seeds, p.subseeds, use_main_prompt=use_main_prompt, index=index, all_negative_prompts=p.negative_prompts)


def process_image(p, i, x_sample, outputs: JobOutputs):
    """Image i of the batch: face restoration, the scripts' postprocess hooks, colour correction, the inpainting
    overlay, its infotext, saving, and the mask outputs."""
    p.batch_index = i
    image = tensor_to_image(x_sample)

    if p.restore_faces:
        image = _restore_faces(p, image, i)

    if p.scripts is not None:
        pp = scripts.PostprocessImageArgs(image)
        p.scripts.postprocess_image(p, pp)
        image = pp.image

    mask_for_overlay = getattr(p, "mask_for_overlay", None)  # an img2img field; scripts may set it on txt2img too
    overlay = p.overlay_images[i] if p.overlay_images is not None and i < len(p.overlay_images) else None
    if p.scripts is not None:
        ppmo = scripts.PostProcessMaskOverlayArgs(i, mask_for_overlay, overlay)
        p.scripts.postprocess_maskoverlay(p, ppmo)
        mask_for_overlay, overlay = ppmo.mask_for_overlay, ppmo.overlay_image

    if p.color_corrections is not None and i < len(p.color_corrections):
        image = apply_color_correction(p.color_corrections[i], image)

    denoised_image = image
    if overlay is not None and getattr(p, "overlay_inpaint", opts.overlay_inpaint):
        image, denoised_image = apply_overlay(image, p.paste_to, overlay)
    elif p.paste_to is not None:
        image, denoised_image = apply_overlay(image, p.paste_to, None)

    if p.scripts is not None:
        pp = scripts.PostprocessImageArgs(image)
        p.scripts.postprocess_image_after_composite(p, pp)
        image = pp.image

    text = batch_infotext(p, i)
    outputs.infotexts.append(text)
    if opts.enable_pnginfo:
        image.info["parameters"] = text
    outputs.images.append(image)

    if p.save_samples():
        images.save_image(image, p.outpath_samples, "", p.seeds[i], p.prompts[i], opts.samples_format, info=text, p=p)

    if mask_for_overlay is not None:
        for extra in inpaint_mask_outputs(p, i, denoised_image, mask_for_overlay, text):
            outputs.mask_images.append((extra, text))


def add_grid(p, outputs: JobOutputs) -> int:
    """The grid of the job's images, shown first and/or saved as the settings ask; returns index_of_first_image."""
    unwanted_grid_because_of_img_count = len(outputs.images) < 2 and opts.grid_only_if_multiple
    if not (opts.return_grid or opts.grid_save) or p.do_not_save_grid or unwanted_grid_because_of_img_count:
        return 0
    grid = images.image_grid(outputs.images, p.batch_size)
    text = batch_infotext(p, use_main_prompt=True)
    index_of_first_image = 0
    if opts.return_grid:
        outputs.infotexts.insert(0, text)
        if opts.enable_pnginfo:
            grid.info["parameters"] = text
        outputs.images.insert(0, grid)
        index_of_first_image = 1
    if opts.grid_save:
        images.save_image(grid, p.outpath_grids, "grid", p.all_seeds[0], p.all_prompts[0], opts.grid_format, info=text, short_filename=not opts.grid_extended_filename, p=p, grid=True)
    return index_of_first_image


def inpaint_mask_outputs(p, i, denoised_image, mask_for_overlay, infotext_text):
    """The greyscale mask and the masked composite (the generated pixels inside the mask, transparent outside), saved
    and/or returned as the save_mask / return_mask options (and their _composite twins) ask."""
    wanted = [opts.save_mask, opts.return_mask, opts.save_mask_composite, opts.return_mask_composite]
    if not any(wanted):
        return []
    mask = mask_for_overlay.convert("RGB")
    composite = None
    if opts.save_mask_composite or opts.return_mask_composite:
        inside = images.resize_image(2, mask_for_overlay, denoised_image.width, denoised_image.height).convert("L")
        composite = Image.composite(denoised_image.convert("RGBA"), Image.new("RGBA", denoised_image.size), inside)
    if p.save_samples():
        for want, picture, suffix in ((opts.save_mask, mask, "-mask"), (opts.save_mask_composite, composite, "-mask-composite")):
            if want:
                images.save_image(picture, p.outpath_samples, "", p.seeds[i], p.prompts[i], opts.samples_format,
                                  info=infotext_text, p=p, suffix=suffix)
    return [picture for want, picture in ((opts.return_mask, mask), (opts.return_mask_composite, composite)) if want]


def _restore_faces(p, image, i):
    if opts.save_images_before_face_restoration and p.save_samples():
        images.save_image(image, p.outpath_samples, "", p.seeds[i], p.prompts[i], opts.samples_format, info=batch_infotext(p, i), p=p, suffix="-before-face-restoration")
    restored = face_restoration.restore_faces(np.array(image))
    return Image.fromarray(restored)


def _write_params_txt(p):
    """The last job's infotext, read back by the ↙️ paste button when the prompt is empty."""
    try:
        text = create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds, use_main_prompt=True, all_negative_prompts=p.all_negative_prompts)
        path = os.path.join(shared.data_path, "params.txt")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf8") as file:
            file.write(text)
        os.replace(tmp, path)
    except Exception:
        errors.report("Could not write params.txt", exc_info=True)


from modules.processing_txt2img import StableDiffusionProcessingTxt2Img  # noqa: E402,F401
from modules.processing_img2img import StableDiffusionProcessingImg2Img  # noqa: E402,F401
