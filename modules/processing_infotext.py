"""The infotext ("parameters") written into every image, in A1111's exact key order and quoting."""
import json

from modules import devices, shared


def quote(value):
    """JSON-quote a value only when it contains a comma, colon or newline (A1111's rule)."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def program_version():
    from modules import launch_info
    return launch_info.version()


def _sampler_uses_ensd(p):
    from modules import sd_samplers
    config = sd_samplers.all_samplers_map.get(p.sampler_name)
    if config is None or not config.options.get("uses_ensd", False):
        return False
    eta = p.eta if getattr(p, "eta", None) is not None else shared.opts.eta_ancestral
    return eta != 0


def create_infotext(p, all_prompts, all_seeds, all_subseeds, comments=None, iteration=0, position_in_batch=0,
                    use_main_prompt=False, index=None, all_negative_prompts=None):
    """The text A1111 writes for image `index` of a job; `parse_generation_parameters` reads it back."""
    if use_main_prompt:
        index = 0
    elif index is None:
        index = position_in_batch + iteration * p.batch_size
    if all_negative_prompts is None:
        all_negative_prompts = p.all_negative_prompts

    clip_skip = int(getattr(p, "clip_skip", None) or shared.opts.CLIP_stop_at_last_layers)
    enable_hr = getattr(p, "enable_hr", False)
    token_merging_ratio = p.get_token_merging_ratio()
    token_merging_ratio_hr = p.get_token_merging_ratio(for_hr=True)
    ensd = shared.opts.eta_noise_seed_delta

    uses_ensd = ensd != 0 and _sampler_uses_ensd(p)
    model = p.sd_model
    checkpoint_info = getattr(model, "sd_checkpoint_info", None)

    params = {
        "Steps": p.steps,
        "Sampler": p.sampler_name,
        "Schedule type": p.scheduler,
        "CFG scale": p.cfg_scale,
        "Image CFG scale": getattr(p, "image_cfg_scale", None),
        "Seed": p.all_seeds[0] if use_main_prompt else all_seeds[index],
        "Face restoration": shared.opts.face_restoration_model if p.restore_faces else None,
        "Size": f"{p.width}x{p.height}",
        "Model hash": p.sd_model_hash if shared.opts.add_model_hash_to_info else None,
        "Model": p.sd_model_name if shared.opts.add_model_name_to_info else None,
        "VAE hash": p.sd_vae_hash if shared.opts.add_vae_hash_to_info else None,
        "VAE": p.sd_vae_name if shared.opts.add_vae_name_to_info else None,
        "Variation seed": (None if p.subseed_strength == 0 else (p.all_subseeds[0] if use_main_prompt else all_subseeds[index])),
        "Variation seed strength": (None if p.subseed_strength == 0 else p.subseed_strength),
        "Seed resize from": (None if p.seed_resize_from_w <= 0 or p.seed_resize_from_h <= 0 else f"{p.seed_resize_from_w}x{p.seed_resize_from_h}"),
        "Denoising strength": p.extra_generation_params.get("Denoising strength"),
        "Conditional mask weight": getattr(p, "inpainting_mask_weight", shared.opts.inpainting_mask_weight) if getattr(p, "is_using_inpainting_conditioning", False) else None,
        "Clip skip": None if clip_skip <= 1 else clip_skip,
        "ENSD": ensd if uses_ensd else None,
        "Token merging ratio": None if token_merging_ratio == 0 else token_merging_ratio,
        "Token merging ratio hr": None if not enable_hr or token_merging_ratio_hr == 0 else token_merging_ratio_hr,
        "Init image hash": getattr(p, "init_img_hash", None),
        "RNG": shared.opts.randn_source if shared.opts.randn_source != "GPU" else None,
        "Tiling": "True" if p.tiling else None,
        "FP8 weight": shared.opts.fp8_storage if devices.fp8 else None,
        "Cache FP16 weight for LoRA": shared.opts.cache_fp16_weight if devices.fp8 else None,
    }
    params.update(p.extra_generation_params)
    params["Version"] = program_version() if shared.opts.add_version_to_infotext else None
    params["User"] = p.user if shared.opts.add_user_name_to_info and getattr(p, "user", None) else None

    prompt_text = p.main_prompt if use_main_prompt else all_prompts[index]
    negative_prompt = p.main_negative_prompt if use_main_prompt else all_negative_prompts[index]

    resolved = {}
    for key, value in params.items():
        try:
            if isinstance(value, list):
                value = value[index]
            elif callable(value):
                value = value(**locals())
        except Exception:
            from modules import errors
            errors.report(f"Error creating infotext for key {key}", exc_info=True)
            value = None
        resolved[key] = value

    params_text = ", ".join([k if k == v else f"{k}: {quote(v)}" for k, v in resolved.items() if v is not None])
    negative_prompt_text = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt_text}{negative_prompt_text}\n{params_text}".strip()
