"""Finding, naming and loading Stable Diffusion checkpoints (A1111: modules.sd_models).

Loading: read the state dict (safetensors memory-mapped; .ckpt/.pt through modules.safe), detect the config
from keys and shapes (modules.model_detection), build the ldm modules on the meta device, assign the file's
tensors to them (no second copy), then move/cast to the inference device and dtypes (modules.devices).
"""
import collections
import gc
import json
import os
import re
import sys
import threading

import torch

from ldm.modules.encoders.modules import restore_non_persistent_buffers
from modules import (
    devices, errors, fp8_weights, hashes, loaded_models, lowvram, memory_placement, model_builder, model_config_yaml,
    model_detection, model_families, paths, safe, script_callbacks, sd_hijack, sd_vae, sd_vae_tiled, shared,
    torch_compile, weight_loading,
)
from modules.cache import cached_data_for_file

model_dir = "Stable-diffusion"
model_path = os.path.abspath(os.path.join(paths.models_path, model_dir))
CHECKPOINT_EXTENSIONS = (".safetensors", ".ckpt", ".pt")
VAE_SUFFIXES = (".vae.pt", ".vae.ckpt", ".vae.safetensors")

checkpoints_list = {}        # title -> CheckpointInfo
checkpoint_aliases = {}      # any id (title, name, hash, ...) -> CheckpointInfo
checkpoint_alisases = checkpoint_aliases  # A1111's misspelt name; extensions still use it
checkpoints_loaded = collections.OrderedDict()
load_lock = threading.Lock()

re_strip_checksum = re.compile(r"\s*\[[^]]+]\s*$")


def _models_dir():
    """models/Stable-diffusion under the current models path (read at call time so tests can point it elsewhere)."""
    return os.path.abspath(os.path.join(shared.models_path, model_dir))


def replace_key(d, key, new_key, value):
    """Rename `key` to `new_key` in dict d, keeping its position."""
    keys = list(d.keys())
    d[new_key] = value
    if key not in keys:
        return d
    index = keys.index(key)
    keys[index] = new_key
    new_d = {k: d[k] for k in keys}
    d.clear()
    d.update(new_d)
    return d


class CheckpointInfo:
    """A checkpoint file and its names: title "name [shorthash]" once hashed, aliases for lookup."""

    def __init__(self, filename):
        self.filename = filename
        abspath = os.path.abspath(filename)
        ckpt_dir = shared.cmd_opts.ckpt_dir
        abs_ckpt_dir = os.path.abspath(ckpt_dir) if ckpt_dir is not None else None
        self.is_safetensors = os.path.splitext(filename)[1].lower() == ".safetensors"
        models_dir = _models_dir()
        if abs_ckpt_dir and abspath.startswith(abs_ckpt_dir + os.sep):
            name = abspath[len(abs_ckpt_dir):]
        elif abspath.startswith(models_dir + os.sep):
            name = abspath[len(models_dir):]
        else:
            name = os.path.basename(filename)
        name = name.lstrip("\\/")

        self.metadata = {}
        if self.is_safetensors:
            try:
                self.metadata = cached_data_for_file("safetensors-metadata", "checkpoint/" + name, filename,
                                                     lambda: read_metadata_from_safetensors(filename))
            except Exception as e:
                errors.display(e, f"reading metadata for {filename}")

        self.name = name
        self.name_for_extra = os.path.splitext(os.path.basename(filename))[0]
        self.model_name = os.path.splitext(name.replace("/", "_").replace("\\", "_"))[0]
        self.hash = hashes.model_hash(filename)
        self.sha256 = hashes.sha256_from_cache(self.filename, f"checkpoint/{name}")
        self.shorthash = self.sha256[0:10] if self.sha256 else None
        self.title = name if self.shorthash is None else f"{name} [{self.shorthash}]"
        self.short_title = self.name_for_extra if self.shorthash is None else f"{self.name_for_extra} [{self.shorthash}]"
        self.ids = [self.hash, self.model_name, self.title, name, self.name_for_extra, f"{name} [{self.hash}]"]
        if self.shorthash:
            self.ids += [self.shorthash, self.sha256, f"{self.name} [{self.shorthash}]", f"{self.name_for_extra} [{self.shorthash}]"]

    def register(self):
        checkpoints_list[self.title] = self
        for id_ in self.ids:
            checkpoint_aliases[id_] = self

    def calculate_shorthash(self):
        """Hash the file (cached) and retitle this checkpoint "name [shorthash]"; None with --no-hashing."""
        self.sha256 = hashes.sha256(self.filename, f"checkpoint/{self.name}")
        if self.sha256 is None:
            return None
        shorthash = self.sha256[0:10]
        if self.shorthash == shorthash:
            return self.shorthash
        self.shorthash = shorthash
        if self.shorthash not in self.ids:
            self.ids += [self.shorthash, self.sha256, f"{self.name} [{self.shorthash}]", f"{self.name_for_extra} [{self.shorthash}]"]
        old_title = self.title
        self.title = f"{self.name} [{self.shorthash}]"
        self.short_title = f"{self.name_for_extra} [{self.shorthash}]"
        replace_key(checkpoints_list, old_title, self.title, self)
        self.register()
        return self.shorthash

    def __repr__(self):
        return f"CheckpointInfo({self.filename!r})"


def _checkpoint_files(directory):
    if not directory or not os.path.isdir(directory):
        return []
    found = []
    for path in shared.walk_files(directory, allowed_extensions=CHECKPOINT_EXTENSIONS):
        if path.lower().endswith(VAE_SUFFIXES):
            continue  # VAE files sitting beside their checkpoint
        found.append(path)
    return found


def list_models():
    """Rescan models/Stable-diffusion and --ckpt-dir; --ckpt (if it exists) is added and selected."""
    checkpoints_list.clear()
    checkpoint_aliases.clear()
    global model_path
    model_path = _models_dir()

    cmd_ckpt = shared.cmd_opts.ckpt
    files = _checkpoint_files(model_path)
    if shared.cmd_opts.ckpt_dir:
        files += [f for f in _checkpoint_files(shared.cmd_opts.ckpt_dir) if f not in files]

    if cmd_ckpt and os.path.isfile(cmd_ckpt):
        checkpoint_info = CheckpointInfo(cmd_ckpt)
        checkpoint_info.register()
        shared.opts.data["sd_model_checkpoint"] = checkpoint_info.title
    elif cmd_ckpt is not None and cmd_ckpt != shared.paths_internal.default_sd_model_file:
        print(f"Checkpoint in --ckpt argument not found (Possible it was moved to {model_path}: {cmd_ckpt}", file=sys.stderr)

    for filename in files:
        CheckpointInfo(filename).register()

    # A data folder of its own (--data-dir, --models-dir) with no checkpoint yet still opens with the demo model the
    # program ships, as A1111 falls back to downloading SD1.5; --no-download-sd-model turns the fallback off.
    shipped = os.path.join(shared.paths_internal.script_path, "models", model_dir, BUILTIN_DEMO_NAME)
    if not checkpoints_list and not shared.cmd_opts.no_download_sd_model and os.path.isfile(shipped):
        CheckpointInfo(shipped).register()


def checkpoint_tiles(use_short=False):
    """Checkpoint titles for the dropdown, in natural order."""
    return [x.short_title if use_short else x.title for x in sorted(checkpoints_list.values(), key=lambda x: shared.natural_sort_key(x.title))]


def get_closet_checkpoint_match(search_string):
    """The checkpoint best matching a title/name/hash (A1111's spelling of "closest")."""
    if not search_string:
        return None
    info = checkpoint_aliases.get(search_string, None)
    if info is not None:
        return info
    found = sorted([info for info in checkpoints_list.values() if search_string in info.title], key=lambda x: len(x.title))
    if found:
        return found[0]
    without_checksum = re.sub(re_strip_checksum, "", search_string)
    found = sorted([info for info in checkpoints_list.values() if without_checksum in info.title], key=lambda x: len(x.title))
    return found[0] if found else None


def no_checkpoint_message():
    folders = [_models_dir()] + ([os.path.abspath(shared.cmd_opts.ckpt_dir)] if shared.cmd_opts.ckpt_dir else [])
    return (f"No Stable Diffusion checkpoint found. Put a .safetensors or .ckpt checkpoint ({model_families.supported_families_text()}) in "
            + " or ".join(folders) + " and press the refresh button next to the checkpoint list.")


BUILTIN_DEMO_NAME = "demo-shapes.safetensors"


def is_builtin_demo(filename) -> bool:
    """The small shapes model the project ships (demo_model/), as opposed to a checkpoint the user put there."""
    return os.path.basename(str(filename)) == BUILTIN_DEMO_NAME


def native_size(checkpoint_info, model=None):
    """(width, height) the checkpoint was made for: its `modelspec.resolution` metadata ("1024x1024"), else the loaded
    model's family default (SD2-v 768, SDXL 1024, ...), else the family its keys show, else SD1's."""
    resolution = str((checkpoint_info.metadata or {}).get("modelspec.resolution", "")) if checkpoint_info else ""
    parts = resolution.lower().split("x")
    if len(parts) == 2 and all(part.strip().isdigit() for part in parts):
        return int(parts[0]), int(parts[1])
    if model is not None:
        return model.default_size, model.default_size
    family = model_families.family_of_keys(read_safetensors_keys(checkpoint_info.filename)) if checkpoint_info and checkpoint_info.is_safetensors else None
    size = (family or model_families.SD1).default_size  # a file of unknown family loads as SD1 does
    return size, size


def read_safetensors_keys(filename):
    """The tensor names of a safetensors file, from its header alone ([] when it cannot be read)."""
    try:
        with open(filename, "rb") as file:
            n = int.from_bytes(file.read(8), "little")
            if not 2 < n <= 100 * 1024 * 1024:
                return []
            return [k for k in json.loads(file.read(n)) if k != "__metadata__"]
    except (OSError, ValueError):
        return []


def select_checkpoint():
    """The checkpoint named by the sd_model_checkpoint setting, else the first one found (the user's own before the
    built-in demo model), else None."""
    model_checkpoint = shared.opts.sd_model_checkpoint
    info = checkpoint_aliases.get(model_checkpoint, None) if model_checkpoint else None
    if info is not None:
        return info
    if not checkpoints_list:
        return None
    # The built-in demo model is the fallback of last resort: a user's own checkpoint comes first.
    own = [i for i in checkpoints_list.values() if not is_builtin_demo(i.filename)]
    info = own[0] if own else next(iter(checkpoints_list.values()))
    if model_checkpoint is not None:
        print(f"Checkpoint {model_checkpoint} not found; loading fallback {info.title}", file=sys.stderr)
    return info


# ---- reading files ------------------------------------------------------------------------------------------------

def read_metadata_from_safetensors(filename):
    """The __metadata__ of a safetensors file (JSON-looking values decoded), read from its header only."""
    with open(filename, mode="rb") as file:
        header_len = file.read(8)
        if len(header_len) != 8:
            raise ValueError(f"{filename}: not a safetensors file (too short)")
        n = int.from_bytes(header_len, "little")
        if n <= 2 or n > 100 * 1024 * 1024:
            raise ValueError(f"{filename}: not a safetensors file (bad header length {n})")
        json_start = file.read(2)
        if json_start != b'{"':
            raise ValueError(f"{filename}: not a safetensors file (header is not JSON)")
        json_data = json_start + file.read(n - 2)
        json_obj = json.loads(json_data)
        res = {}
        for k, v in json_obj.get("__metadata__", {}).items():
            res[k] = v
            if isinstance(v, str) and v[0:1] == "{":
                try:
                    res[k] = json.loads(v)
                except Exception:
                    pass
        return res


_renamed_prefixes = {
    # very old checkpoints saved CLIPTextModel without its text_model level
    "cond_stage_model.transformer.embeddings.": "cond_stage_model.transformer.text_model.embeddings.",
    "cond_stage_model.transformer.encoder.": "cond_stage_model.transformer.text_model.encoder.",
    "cond_stage_model.transformer.final_layer_norm.": "cond_stage_model.transformer.text_model.final_layer_norm.",
}


def transform_checkpoint_dict_key(k):
    for old, new in _renamed_prefixes.items():
        if k.startswith(old):
            return new + k[len(old):]
    return k


def get_state_dict_from_checkpoint(pl_sd):
    """The flat tensor dict of a checkpoint: unwraps Lightning's "state_dict", drops non-tensors, renames old keys."""
    if isinstance(pl_sd, dict) and isinstance(pl_sd.get("state_dict"), dict):
        pl_sd = pl_sd["state_dict"]
    if not isinstance(pl_sd, dict):
        raise ValueError(f"expected a dict of tensors, got {type(pl_sd).__name__}")
    return {transform_checkpoint_dict_key(k): v for k, v in pl_sd.items() if isinstance(v, torch.Tensor)}


def read_state_dict(checkpoint_file, print_global_state=False, map_location=None):
    """The checkpoint's flat state dict. Safetensors tensors are memory-mapped views of the file."""
    if not os.path.isfile(checkpoint_file):
        raise FileNotFoundError(f"checkpoint file not found: {checkpoint_file}")
    _, extension = os.path.splitext(checkpoint_file)
    device = map_location or shared.weight_load_location or "cpu"
    if extension.lower() == ".safetensors":
        pl_sd = weight_loading.read_safetensors(checkpoint_file, device)
    else:
        pl_sd = safe.load(checkpoint_file, map_location=device)
        if print_global_state and isinstance(pl_sd, dict) and "global_step" in pl_sd:
            print(f"Global Step: {pl_sd['global_step']}")
    try:
        return get_state_dict_from_checkpoint(pl_sd)
    except ValueError as e:
        raise ValueError(f"{checkpoint_file}: not a checkpoint ({e})") from None


def get_checkpoint_state_dict(checkpoint_info, timer=None):
    return read_state_dict(checkpoint_info.filename)


# ---- building the model --------------------------------------------------------------------------------------------

PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.", "conditioner.")
_ignored_unexpected = (".position_ids", "first_stage_model.loss.", ".logit_scale")


def detect_model_config(state_dict, checkpoint_info=None):
    """The file's family and architecture (modules.model_detection), with its `<checkpoint>.yaml` applied."""
    filename = getattr(checkpoint_info, "filename", None)
    yaml_overrides = model_config_yaml.read(filename) if filename else None
    metadata = getattr(checkpoint_info, "metadata", None)
    return model_detection.detect_config(state_dict, filename, yaml_overrides=yaml_overrides, metadata=metadata)


def build_model(config: model_detection.ModelConfig, device="meta"):
    """The model for a detected config, built on `device` (meta: no memory until weights are assigned)."""
    return model_builder.build_model(config, device=device)


def _fix_vae_attention_shapes(sd):
    """Some VAEs store the mid-block attention projections as Linear (C, C) weights; ours are 1x1 convs."""
    for k, v in list(sd.items()):
        if k.startswith("first_stage_model.") and ".attn_1." in k and k.endswith(".weight") and v.ndim == 2:
            sd[k] = v[:, :, None, None]


def load_model_weights(model, checkpoint_info, state_dict, timer=None, device=None):
    """Assign the state dict's tensors to the (meta-built) model on `device` (default: the inference device) in the
    inference dtypes."""
    name = getattr(checkpoint_info, "filename", None) or "state dict"
    family = model.family.label if model.family is not None else "detected"
    device = device or devices.device
    # converted tensor by tensor, each file page given back once its tensor is converted (peak RSS: model + 1 tensor)
    sd = weight_loading.converted(state_dict, lambda key: _placement_for_key(key, device))
    _fix_vae_attention_shapes(sd)
    try:
        result = model.load_state_dict(sd, strict=False, assign=True)
    except RuntimeError as e:
        raise ValueError(f"{name}: weights do not fit the detected {family} architecture: {e}") from None
    if result.missing_keys:
        shown = ", ".join(result.missing_keys[:5])
        raise ValueError(f"{name}: checkpoint is missing {len(result.missing_keys)} weights the {family} model needs (e.g. {shown})")
    unexpected = [k for k in result.unexpected_keys if not any(p in k for p in _ignored_unexpected)]
    if unexpected:
        print(f"{os.path.basename(name)}: ignoring {len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})", file=sys.stderr)

    restore_non_persistent_buffers(model)
    model.load_schedule(state_dict)
    model.ztsnr = bool(model.model_config is not None and model.model_config.zero_terminal_snr)

    _check_no_meta(model, name)
    place_model(model, device)
    fp8_weights.apply(model)
    if model.model_config is not None and model.model_config.needs_v_prediction_test:
        _decide_sd2_prediction(model)

    if checkpoint_info is not None:
        model.sd_model_hash = checkpoint_info.calculate_shorthash()
        model.sd_model_checkpoint = checkpoint_info.filename
        model.sd_checkpoint_info = checkpoint_info
        shared.opts.data["sd_checkpoint_hash"] = checkpoint_info.sha256
    model.logvar = torch.zeros(model.num_timesteps)
    return model


def _decide_sd2_prediction(model):
    """SD2 files do not say whether they predict v (768-v) or the noise (512-base): run A1111's test on the UNet."""
    config = model.model_config
    if model_detection.is_v_prediction_unet(model.model.diffusion_model, config.unet["context_dim"]):
        model.parameterization = config.parameterization = "v"
    config.parameterization_source = "SD2 test"


def _placement_for_key(key, device):
    """(device, dtype) a checkpoint tensor is loaded to: the VAE in dtype_vae, the UNet and text encoder in dtype_unet."""
    if key.startswith("first_stage_model."):
        return device, devices.dtype_vae
    if key.startswith(PREFIXES):
        return device, devices.dtype_unet
    return None


def _load_device(model, state_dict):
    """Where the weights load to: the GPU when the model runs there whole; RAM when a memory mode (the flags', or the
    automatic placement on a card it does not fit) will move parts of it there later (modules.lowvram)."""
    if lowvram.is_needed(model):
        return devices.cpu
    nbytes = 0
    for key, tensor in state_dict.items():
        placement = _placement_for_key(key, devices.device)
        if placement is not None:
            nbytes += tensor.numel() * (placement[1].itemsize if tensor.is_floating_point() else tensor.element_size())
    return devices.device if memory_placement.fits_bytes(nbytes, model.is_sdxl) else devices.cpu


def weights_freed(model) -> bool:
    """Whether `model` was replaced with its weights freed (load_model's free_replaced): it can no longer draw."""
    first = next(model.model.diffusion_model.parameters(), None)
    return first is not None and first.is_meta


def _check_no_meta(model, name):
    for n, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_meta:
            raise ValueError(f"{name}: no weights for '{n}'")


def text_encoders_of(model):
    """The module holding the model's text encoders: cond_stage_model (SD1/SD2) or the conditioner (SDXL)."""
    return model.conditioner if model.family is not None and model.family.is_sdxl else model.cond_stage_model


def place_model(model, device=None):
    """UNet and text encoders in devices.dtype_unet, VAE in devices.dtype_vae, schedule in float32, all on `device`
    (default: devices.device)."""
    device = device or devices.device
    model.model.to(device=device, dtype=devices.dtype_unet)
    text_encoders_of(model).to(device=device, dtype=devices.dtype_unet)
    model.first_stage_model.to(device=device, dtype=devices.dtype_vae)
    for name in model.SCHEDULE_BUFFERS:
        setattr(model, name, getattr(model, name).to(device=device, dtype=torch.float32))
    model.alphas_cumprod_original = model.alphas_cumprod
    model.model.diffusion_model.dtype = devices.dtype_unet
    if shared.cmd_opts.opt_channelslast:
        model.to(memory_format=torch.channels_last)
    model.eval()
    model.requires_grad_(False)


def rescale_zero_terminal_snr_abar(alphas_cumprod):
    """alphas_cumprod shifted and scaled in sqrt space so the last step has SNR 0 (A1111's "Zero Terminal SNR"; the
    last value is kept just above 0 so sigma stays finite)."""
    alphas_bar_sqrt = alphas_cumprod.sqrt()
    alphas_bar_sqrt_0 = alphas_bar_sqrt[0].clone()
    alphas_bar_sqrt_t = alphas_bar_sqrt[-1].clone()
    alphas_bar_sqrt -= alphas_bar_sqrt_t
    alphas_bar_sqrt *= alphas_bar_sqrt_0 / (alphas_bar_sqrt_0 - alphas_bar_sqrt_t)
    alphas_bar = alphas_bar_sqrt ** 2
    alphas_bar[-1] = 4.8973451890853435e-08
    return alphas_bar


def apply_alpha_schedule_override(sd_model, p=None):
    """The schedule sampling uses for this job: the file's, downcast to fp16 and/or rescaled to zero terminal SNR
    when the settings (or, for zero terminal SNR, the file's `ztsnr` marker) ask; noted in p's infotext."""
    if not hasattr(sd_model, "alphas_cumprod_original"):
        return
    sd_model.alphas_cumprod = sd_model.alphas_cumprod_original.to(devices.device)
    if shared.opts.use_downcasted_alpha_bar:
        if p is not None:
            p.extra_generation_params["Downcast alphas_cumprod"] = shared.opts.use_downcasted_alpha_bar
        sd_model.alphas_cumprod = sd_model.alphas_cumprod.half().to(devices.device)
    if shared.opts.sd_noise_schedule == "Zero Terminal SNR" or sd_model.ztsnr:
        if p is not None and shared.opts.sd_noise_schedule == "Zero Terminal SNR":
            p.extra_generation_params["Noise Schedule"] = shared.opts.sd_noise_schedule
        sd_model.alphas_cumprod = rescale_zero_terminal_snr_abar(sd_model.alphas_cumprod.double()).float().to(devices.device)


def _call_hijack(model):
    try:
        sd_hijack.model_hijack.hijack(model)
    except Exception:
        errors.report("Error applying the prompt/embedding hijack to the model", exc_info=True)


def _undo_hijack(model):
    try:
        sd_hijack.model_hijack.undo_hijack(model)
    except Exception:
        errors.report("Error undoing the hijack of the previous model", exc_info=True)


def _fire_model_loaded(model):
    from modules.lora import networks  # here, not at the top: networks imports sd_models
    networks.assign_network_names_to_compvis_modules(model)  # A1111's Lora extension named the layers on model load
    try:
        script_callbacks.model_loaded_callback(model)
    except Exception:
        errors.report("Error in model_loaded callbacks", exc_info=True)


def unload_model_weights(sd_model=None, info=None):
    """Drop the loaded model (and its memory)."""
    model = sd_model or shared.sd_model
    if model is not None:
        _undo_hijack(model)
        loaded_models.forget(model)
    lowvram.send_everything_to_cpu()  # forget the old model's visiting part
    shared.sd_model = None
    gc.collect()
    devices.torch_gc()
    return None


def load_model(checkpoint_info=None, already_loaded_state_dict=None, free_replaced=False):
    """Load a checkpoint as shared.sd_model. With no checkpoint available, prints where to put one and returns None.

    free_replaced: the model it replaces (when not kept, sd_checkpoints_limit 1) has its weights freed at once, on
    the meta device (A1111's send_model_to_trash), though something may still hold it: a job switching to its
    refiner holds the base, which would otherwise stay in memory beside the refiner (SDXL: 26 GB instead of 14)."""
    from modules.distributed import cluster
    if cluster.requested(shared.cmd_opts):
        return None  # a front of Ray workers holds no model: each worker loads what its jobs ask for
    checkpoint_info = checkpoint_info or select_checkpoint()
    if checkpoint_info is None:
        print(no_checkpoint_message(), file=sys.stderr)
        return None
    filename = checkpoint_info.filename

    with load_lock:
        # read and recognise the file first: a bad file leaves the current model loaded
        state_dict = already_loaded_state_dict if already_loaded_state_dict is not None else read_state_dict(filename)
        config = detect_model_config(state_dict, checkpoint_info)
        if shared.sd_model is not None:
            if loaded_models.keeps_previous():
                _set_aside(shared.sd_model)
            else:
                replaced = shared.sd_model
                unload_model_weights(replaced)
                if free_replaced:
                    replaced.to(device="meta")
                    devices.torch_gc()
        devices.refresh_precision(shared.cmd_opts)  # the half-precision setting may have changed
        model = build_model(config)
        load_model_weights(model, checkpoint_info, state_dict, device=_load_device(model, state_dict))
        del state_dict

        if not sd_vae.vae_dict:
            sd_vae.refresh_vae_list()
        vae_file, vae_source = sd_vae.resolve_vae(filename)
        sd_vae.load_vae(model, vae_file, vae_source)
        lowvram.apply(model)
        sd_vae_tiled.install(model.first_stage_model)
        if shared.cmd_opts.compile:
            torch_compile.apply(model)

        shared.sd_model = model
        shared.opts.data["sd_model_checkpoint"] = checkpoint_info.title
        _call_hijack(model)
        _fire_model_loaded(model)
        loaded_models.use(model)  # a model beyond the limit is forgotten
    print(f"Model loaded: {checkpoint_info.title} ({model.model_config.label})")
    return model


def _set_aside(model):
    """The model in use stops being it but stays loaded (sd_checkpoints_limit > 1), resting in RAM."""
    _undo_hijack(model)
    loaded_models.rest(model)
    shared.sd_model = None


def _switch_to(model):
    """Make a kept model the one in use again: moved back, no file read."""
    with load_lock:
        if shared.sd_model is not None:
            _set_aside(shared.sd_model)
        loaded_models.resume(model)
        shared.sd_model = model
        shared.opts.data["sd_model_checkpoint"] = model.sd_checkpoint_info.title
        sd_vae.resume_model(model)
        _call_hijack(model)
        _fire_model_loaded(model)
    print(f"Model loaded: {model.sd_checkpoint_info.title} (kept in memory)")
    return model


def reload_model_weights(sd_model=None, info=None, forced_reload=False):
    """Switch to checkpoint `info` (default: the selected one); keeps the current model if it is that file already."""
    checkpoint_info = info or select_checkpoint()
    current = sd_model or shared.sd_model
    if checkpoint_info is None:
        return current
    if current is not None and not forced_reload and current.sd_model_checkpoint == checkpoint_info.filename:
        return current
    kept = loaded_models.find(checkpoint_info)
    if kept is not None and not forced_reload:
        return _switch_to(kept)
    return load_model(checkpoint_info, free_replaced=True)


def model_data_get_sd_model():
    """shared.sd_model, loading the selected checkpoint first if none is loaded yet (None if there is none)."""
    if shared.sd_model is None:
        try:
            load_model()
        except Exception:
            errors.report("Failed to load the Stable Diffusion model", exc_info=True)
    return shared.sd_model


def model_hash(filename):
    """A1111's old 8-digit checkpoint hash: sha256 of the 64 KiB at offset 1 MiB ("NOFILE" if there is no file)."""
    import hashlib
    try:
        with open(filename, "rb") as file:
            file.seek(0x100000)
            return hashlib.sha256(file.read(0x10000)).hexdigest()[0:8]
    except FileNotFoundError:
        return "NOFILE"


class SdModelData:
    """A1111's holder of the loaded model (`sd_models.model_data`): extensions read `.sd_model`/`get_sd_model()`."""

    @property
    def sd_model(self):
        return shared.sd_model

    @sd_model.setter
    def sd_model(self, value):
        shared.sd_model = value

    @property
    def loaded_sd_models(self):
        return loaded_models.loaded

    def get_sd_model(self):
        return model_data_get_sd_model()

    def set_sd_model(self, value, already_loaded=False):
        shared.sd_model = value


model_data = SdModelData()
