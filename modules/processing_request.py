"""A generation request checked and normalised, then turned into a processing object: the one path from a request
(the web UI's form, a REST API body, a worker's job) to `process_images`.

A request is a plain dict with A1111's processing field names (`prompt`, `steps`, `sampler_name`, ...), plus
`script_args` (the full positional list of the tab's scripts: index 0 is the selected script, 0 = none) and
`override_settings`. `normalize(kind, request)` accepts legacy names (`sampler_index`), drops unknown fields, casts
numbers, resolves sampler/scheduler/upscaler/checkpoint names and refuses absurd sizes before any memory is
allocated; every refusal is a RequestError naming the field.
"""
import dataclasses
import math

from modules import shared

# Refused before anything is allocated (the UI's sliders stay far below these).
MAX_SIDE = 8192                       # width, height, hires and seed-resize targets
MAX_BATCH_PIXELS = 64 * 1024 * 1024   # width x height x batch size of one sampling pass
MAX_STEPS = 1000
MAX_BATCH_SIZE = 64
MAX_N_ITER = 10000
MAX_JOB_PIXELS = 1024 ** 3            # every image of one API answer (see check_answer_size)
SEED_RANGE = (-2 ** 63, 2 ** 63 - 1)  # what the random generators and the JSON answers hold

# Dataclass init fields that are not request fields (A1111's API_NOT_ALLOWED, less sampler_index: a legacy name).
NOT_REQUEST_FIELDS = {"self", "kwargs", "sd_model", "outpath_samples", "outpath_grids", "extra_generation_params",
                      "overlay_images", "do_not_reload_embeddings", "seed_enable_extras", "prompt_for_display",
                      "sampler_noise_scheduler_override", "ddim_discretize", "sampler_index"}
# Besides processing fields, what a normalised request may hold.
REQUEST_EXTRAS = {"script_args", "is_api"}

INT_FIELDS = {"steps", "width", "height", "batch_size", "n_iter", "seed", "subseed", "seed_resize_from_h",
              "seed_resize_from_w", "hr_second_pass_steps", "hr_resize_x", "hr_resize_y", "firstphase_width",
              "firstphase_height", "resize_mode", "mask_blur_x", "mask_blur_y", "mask_blur", "inpainting_fill",
              "inpaint_full_res_padding", "inpainting_mask_invert"}
FLOAT_FIELDS = {"cfg_scale", "subseed_strength", "denoising_strength", "hr_scale", "image_cfg_scale", "eta",
                "s_min_uncond", "s_churn", "s_tmax", "s_tmin", "s_noise", "initial_noise_multiplier",
                "refiner_switch_at"}
CHECKPOINT_KEEP_NAMES = {"", "None", "Use same checkpoint"}


class RequestError(ValueError):
    """A bad request field: `field` names it, `status_code` is the HTTP answer (422 unless the reference differs)."""

    def __init__(self, field: str, message: str, status_code: int = 422):
        super().__init__(message)
        self.field = field
        self.message = message
        self.status_code = status_code


def processing_class(kind: str):
    from modules import processing
    classes = {"txt2img": processing.StableDiffusionProcessingTxt2Img, "img2img": processing.StableDiffusionProcessingImg2Img}
    if kind not in classes:
        raise ValueError(f"unknown generation kind {kind!r}; expected txt2img or img2img")
    return classes[kind]


def request_fields(kind: str) -> dict:
    """Field name -> dataclass Field of what a `kind` request may set (A1111's API request fields)."""
    return {f.name: f for f in dataclasses.fields(processing_class(kind)) if f.init and f.name not in NOT_REQUEST_FIELDS}


# ---------------------------------------------------------------------------------------------- normalisation

def normalize(kind: str, request: dict) -> dict:
    """A checked copy of `request`: legacy names mapped, unknown fields dropped, numbers cast, names resolved."""
    fields = request_fields(kind)
    request = dict(request)
    legacy_sampler = request.pop("sampler_index", None)
    if not request.get("sampler_name") and isinstance(legacy_sampler, str) and legacy_sampler:
        request["sampler_name"] = legacy_sampler
    request = {k: v for k, v in request.items() if k in fields or k in REQUEST_EXTRAS}
    _drop_nulls(request, fields)
    _check_text(request)
    _cast_numbers(request)
    _check_sizes(kind, request)
    _resolve_samplers(request)
    if kind == "txt2img":
        _check_hires_upscaler(request)
    _check_checkpoints(request)
    request["styles"] = list(request.get("styles") or [])
    request["override_settings"] = dict(request.get("override_settings") or {})
    request["script_args"] = list(request.get("script_args") or [])
    return request


def _drop_nulls(request, fields):
    """A null for a field that has a default means "not set" (JSON clients send null for unset fields): the
    processing class's default applies, as if the field were left out."""
    for name, value in list(request.items()):
        field = fields.get(name)
        if value is None and field is not None and (field.default_factory is not dataclasses.MISSING or
                                                    field.default not in (None, dataclasses.MISSING) and not isinstance(field.default, property)):
            del request[name]


def _check_text(request):
    """Text the tokenizer and the infotext can hold: JSON may carry a lone UTF-16 surrogate ("\\ud800")."""
    for name, value in request.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as e:
                    raise RequestError(name, f"{name} is not valid text: {e.reason} at character {e.start}") from None


def _cast_numbers(request):
    for name, value in list(request.items()):
        if name in ("seed", "subseed") and value in (None, ""):
            request[name] = -1
            continue
        if value is None:
            continue
        try:
            if name in INT_FIELDS and not isinstance(value, bool):
                request[name] = _whole_number(value)
            elif name in FLOAT_FIELDS:
                number = float(value)
                if not math.isfinite(number):
                    raise ValueError
                request[name] = number
        except (TypeError, ValueError):
            kind = "a whole number" if name in INT_FIELDS else "a number"
            raise RequestError(name, f"{name} must be {kind}, got {value!r}") from None


def _whole_number(value) -> int:
    """An int, or a string or float holding a whole number; a big seed keeps every digit (no detour via float)."""
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = float(value)
    if not math.isfinite(number) or number != int(number):
        raise ValueError
    return int(number)


def _in_range(request, name, low, high):
    value = request.get(name)
    if value is not None and not low <= value <= high:
        raise RequestError(name, f"{name} must be between {low} and {high}, got {value}")


def _check_sizes(kind, request):
    _in_range(request, "width", 8, MAX_SIDE)
    _in_range(request, "height", 8, MAX_SIDE)
    _in_range(request, "steps", 1, MAX_STEPS)
    _in_range(request, "hr_second_pass_steps", 0, MAX_STEPS)
    _in_range(request, "batch_size", 1, MAX_BATCH_SIZE)
    _in_range(request, "n_iter", 1, MAX_N_ITER)
    _in_range(request, "hr_resize_x", 0, MAX_SIDE)
    _in_range(request, "hr_resize_y", 0, MAX_SIDE)
    _in_range(request, "firstphase_width", 0, MAX_SIDE)
    _in_range(request, "firstphase_height", 0, MAX_SIDE)
    _in_range(request, "seed_resize_from_w", -1, MAX_SIDE)
    _in_range(request, "seed_resize_from_h", -1, MAX_SIDE)
    _in_range(request, "seed", *SEED_RANGE)
    _in_range(request, "subseed", *SEED_RANGE)
    _in_range(request, "denoising_strength", 0.0, 1.0)
    _in_range(request, "subseed_strength", 0.0, 1.0)
    _in_range(request, "hr_scale", 0.0, 16.0)
    width, height = request.get("width", 512), request.get("height", 512)
    batch_size = request.get("batch_size", 1)
    if width * height * batch_size > MAX_BATCH_PIXELS:
        raise RequestError("batch_size", f"width x height x batch_size = {width}x{height}x{batch_size} is more than "
                                         f"{MAX_BATCH_PIXELS} pixels in one pass; lower the size or the batch size")
    if kind == "txt2img" and request.get("enable_hr"):
        target_w, target_h = hires_target(request)
        if min(target_w, target_h) < 8:
            field = "hr_resize_x" if request.get("hr_resize_x") or request.get("hr_resize_y") else "hr_scale"
            raise RequestError(field, f"the hires fix target {target_w}x{target_h} is too small: at least 8 pixels a side")
        if max(target_w, target_h) > MAX_SIDE or target_w * target_h * batch_size > MAX_BATCH_PIXELS:
            raise RequestError("hr_scale", f"the hires fix target {target_w}x{target_h} (x{batch_size}) is too large: "
                                           f"at most {MAX_SIDE} pixels a side and {MAX_BATCH_PIXELS} pixels a pass")


def check_answer_size(kind, request):
    """An API job's images are all held and base64-encoded in one answer: n_iter 10000 at 512x512 (every field within
    its limits) would hold about 8 GB. The UI, which saves each image as it comes (A1111 refuses none), is not
    limited."""
    width, height = request.get("width", 512), request.get("height", 512)
    if kind == "txt2img" and request.get("enable_hr"):
        width, height = hires_target(request)
    images = request.get("batch_size", 1) * request.get("n_iter", 1)
    if width * height * images > MAX_JOB_PIXELS:
        raise RequestError("n_iter", f"{images} images of {width}x{height} (batch_size x n_iter) are more than "
                                     f"{MAX_JOB_PIXELS} pixels in one job, all held and answered at once; "
                                     f"send several smaller requests")


def hires_target(request) -> tuple[int, int]:
    """The hires fix's output size for a request (the legacy firstphase_* fields make width/height the target)."""
    width, height = request.get("width", 512), request.get("height", 512)
    if request.get("firstphase_width") or request.get("firstphase_height"):
        return width, height
    resize_x, resize_y = request.get("hr_resize_x") or 0, request.get("hr_resize_y") or 0
    if resize_x or resize_y:
        return resize_x or resize_y * width // height, resize_y or resize_x * height // width
    scale = request.get("hr_scale", 2.0)
    return int(width * scale), int(height * scale)


def _resolve_samplers(request):
    from modules import sd_samplers, sd_schedulers
    valid_samplers = ", ".join(x.name for x in sd_samplers.all_samplers)
    valid_schedulers = ", ".join(x.label for x in sd_schedulers.schedulers)
    for field in ("scheduler", "hr_scheduler"):
        name = request.get(field)
        if name not in (None, "", "Use same scheduler"):
            try:
                sd_schedulers.find_scheduler(name)
            except ValueError:
                raise RequestError(field, f"Scheduler not found: {name!r}; valid schedule types: {valid_schedulers}", 400) from None
    try:
        request["sampler_name"], request["scheduler"] = sd_samplers.get_sampler_and_scheduler(
            request.get("sampler_name"), request.get("scheduler"), convert_automatic=False)
    except ValueError:
        raise RequestError("sampler_name", f"Sampler not found: {request.get('sampler_name')!r}; valid samplers: {valid_samplers}", 400) from None
    hr_sampler = request.get("hr_sampler_name")
    if hr_sampler in ("", "Use same sampler"):
        request["hr_sampler_name"] = None
    elif hr_sampler is not None:
        config = sd_samplers.find_sampler_config(hr_sampler)
        if config is None:
            raise RequestError("hr_sampler_name", f"Sampler not found: {hr_sampler!r}; valid samplers: {valid_samplers}", 400)
        request["hr_sampler_name"] = config.name
    hr_scheduler = request.get("hr_scheduler")
    if hr_scheduler in ("", "Use same scheduler"):
        request["hr_scheduler"] = None
    elif hr_scheduler is not None:
        request["hr_scheduler"] = sd_schedulers.find_scheduler(hr_scheduler).label


def _check_hires_upscaler(request):
    from modules.processing_txt2img import hires_upscaler_names
    name = request.get("hr_upscaler")
    if name in (None, ""):
        request["hr_upscaler"] = None
        return
    valid = hires_upscaler_names()
    match = next((x for x in valid if x.lower() == str(name).lower()), None)
    if match is None:
        raise RequestError("hr_upscaler", f"Upscaler not found: {name!r}; valid upscalers: {', '.join(valid)}", 400)
    request["hr_upscaler"] = match


def checkpoint_or_error(field: str, name: str):
    """The CheckpointInfo `name` names (title, file name, hash...), or a RequestError listing the checkpoints."""
    from modules import sd_models
    info = sd_models.get_closet_checkpoint_match(str(name))
    if info is None:
        valid = ", ".join(sd_models.checkpoint_tiles()) or "(none: the checkpoint folder is empty)"
        raise RequestError(field, f"Checkpoint not found: {name!r}; valid checkpoints: {valid}", 400)
    return info


def _check_checkpoints(request):
    override = request.get("override_settings") or {}
    if not isinstance(override, dict):
        raise RequestError("override_settings", "override_settings must be an object of setting names and values")
    if override.get("sd_model_checkpoint") not in (None, ""):
        checkpoint_or_error("override_settings.sd_model_checkpoint", override["sd_model_checkpoint"])
    for name in ("hr_checkpoint_name", "refiner_checkpoint"):
        value = request.get(name)
        if value is not None and value not in CHECKPOINT_KEEP_NAMES:
            checkpoint_or_error(name, value)


# ---------------------------------------------------------------------------------------------- scripts

def script_runner(kind: str):
    from modules import scripts
    return scripts.scripts_img2img if kind == "img2img" else scripts.scripts_txt2img


def default_script_args(runner) -> list:
    """Every script control's default value in script_args order (index 0: no script selected), as A1111's API."""
    if runner is None:
        return [0]
    size = max([len(runner.inputs or [None])] + [s.args_to or 0 for s in runner.scripts])
    args = [None] * size
    for i, control in enumerate((runner.inputs or [None])[1:], start=1):
        args[i] = getattr(control, "value", None)
    args[0] = 0
    return args


def script_args_from_api(kind: str, script_name=None, script_args=None, alwayson_scripts=None, infotext_args=None) -> list:
    """The full script_args list of an API request: defaults, values an infotext gave ({position: value}), the
    named dropdown script's args, always-on args (A1111's order)."""
    runner = script_runner(kind)
    args = default_script_args(runner)
    for position, value in (infotext_args or {}).items():
        if position < len(args):
            args[position] = value
    if script_name not in (None, "", "None"):
        script = runner.script(script_name) if runner is not None else None
        if script is None or script not in runner.selectable_scripts:
            valid = ", ".join(s.name for s in (runner.selectable_scripts if runner else [])) or "(none)"
            raise RequestError("script_name", f"Script '{script_name}' not found; valid scripts: {valid}")
        args[0] = runner.selectable_scripts.index(script) + 1
        values = list(script_args or [])
        end = script.args_from + len(values)
        if end > len(args):
            args += [None] * (end - len(args))
        args[script.args_from:end] = values
    if alwayson_scripts:
        if not isinstance(alwayson_scripts, dict):
            raise RequestError("alwayson_scripts", 'alwayson_scripts must be an object: {"<script title>": {"args": [...]}}')
        for title, payload in alwayson_scripts.items():
            script = runner.script(title) if runner is not None else None
            if script is None:
                valid = ", ".join(s.name for s in (runner.alwayson_scripts if runner else [])) or "(none)"
                raise RequestError("alwayson_scripts", f"always on script {title} not found; valid always-on scripts: {valid}")
            if not script.alwayson:
                raise RequestError("alwayson_scripts", f"Cannot have a selectable script in the always on scripts params: {title}")
            if not isinstance(payload, dict) or not isinstance(payload.get("args", []), list):
                raise RequestError("alwayson_scripts", f'alwayson_scripts["{title}"] must be {{"args": [...]}}')
        args = runner.alwayson_args_from_request(alwayson_scripts, args)
    return args


# ---------------------------------------------------------------------------------------------- processing objects

def ensure_model():
    """Wait for the model loading at start-up; load it again when it was unloaded (unload-checkpoint)."""
    from modules import initialize, sd_models
    initialize.wait_for_model()
    if shared.sd_model is None:
        sd_models.model_data_get_sd_model()


def create_processing(kind: str, request: dict, **extra):
    """The processing object for a normalised request, its outdirs set and the tab's scripts attached."""
    from modules.shared import opts
    fields = {k: v for k, v in request.items() if k not in REQUEST_EXTRAS}
    samples, grids = ((opts.outdir_img2img_samples, opts.outdir_img2img_grids) if kind == "img2img"
                      else (opts.outdir_txt2img_samples, opts.outdir_txt2img_grids))
    p = processing_class(kind)(
        sd_model=shared.sd_model,
        outpath_samples=shared.data_relative(opts.outdir_samples or samples),
        outpath_grids=shared.data_relative(opts.outdir_grids or grids),
        **fields, **extra,
    )
    p.is_api = bool(request.get("is_api"))
    runner = script_runner(kind)
    if runner is not None:
        p.scripts = runner
        p.script_args = list(request.get("script_args") or [])
    return p


def run_processing(p):
    """The selected dropdown script's run() when there is one, else process_images; the object is closed after."""
    from modules import processing
    try:
        processed = None
        if p.scripts is not None and p.script_args:
            processed = p.scripts.run(p, *p.script_args)
        if processed is None:
            processed = processing.process_images(p)
        return processed
    finally:
        p.close()
