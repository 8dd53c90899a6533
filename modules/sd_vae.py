"""Separate VAE files replacing a checkpoint's baked-in VAE (A1111: modules.sd_vae).

Where VAEs come from: models/VAE/ (and --vae-dir), `<checkpoint stem>.vae.{pt,ckpt,safetensors}` beside a
checkpoint, and --vae-path (which overrides everything). The `sd_vae` setting picks one: "Automatic" (a VAE named
after the checkpoint if there is one, else the checkpoint's own), "None" (always the checkpoint's own), or a file name.
"""
import dataclasses
import glob
import os

from modules import devices, errors, hashes, script_callbacks, sd_hijack, sd_models, shared

vae_path = os.path.abspath(os.path.join(shared.models_path, "VAE"))
vae_ignore_keys = {"model_ema.decay", "model_ema.num_updates"}
vae_dict = {}          # file name -> path, what the sd_vae setting chooses from
base_vae = None        # the checkpoint's own VAE weights (references, not copies), to restore later
loaded_vae_file = None
checkpoint_info = None
VAE_EXTENSIONS = (".ckpt", ".pt", ".safetensors")
NEAR_CHECKPOINT_SUFFIXES = (".vae.pt", ".vae.ckpt", ".vae.safetensors")

unspecified = object()


def _vae_dir():
    return os.path.abspath(os.path.join(shared.models_path, "VAE"))


def get_loaded_vae_name():
    return os.path.basename(loaded_vae_file) if loaded_vae_file else None


def get_loaded_vae_hash():
    if loaded_vae_file is None:
        return None
    sha256 = hashes.sha256(loaded_vae_file, "vae")
    return sha256[0:10] if sha256 else None


def get_filename(filepath):
    return os.path.basename(filepath)


def refresh_vae_list():
    """Rescan: models/VAE (and --vae-dir) for any weights file, checkpoint folders for *.vae.* files."""
    vae_dict.clear()
    patterns = [os.path.join(sd_models._models_dir(), "**", "*" + s) for s in NEAR_CHECKPOINT_SUFFIXES]
    patterns += [os.path.join(_vae_dir(), "**", "*" + e) for e in VAE_EXTENSIONS]
    if shared.cmd_opts.ckpt_dir is not None and os.path.isdir(shared.cmd_opts.ckpt_dir):
        patterns += [os.path.join(shared.cmd_opts.ckpt_dir, "**", "*" + s) for s in NEAR_CHECKPOINT_SUFFIXES]
    if shared.cmd_opts.vae_dir is not None and os.path.isdir(shared.cmd_opts.vae_dir):
        patterns += [os.path.join(shared.cmd_opts.vae_dir, "**", "*" + e) for e in VAE_EXTENSIONS]
    candidates = []
    for pattern in patterns:
        candidates += [p for p in glob.iglob(pattern, recursive=True) if os.path.isfile(p)]
    found = {get_filename(p): p for p in candidates}
    vae_dict.update(dict(sorted(found.items(), key=lambda item: shared.natural_sort_key(item[0]))))


def find_vae_near_checkpoint(checkpoint_file):
    """A VAE named after the checkpoint: `<stem>.vae.*` beside it, or a listed VAE whose name starts with `<stem>.`."""
    directory = os.path.dirname(os.path.abspath(checkpoint_file))
    stem = os.path.basename(checkpoint_file).rsplit(".", 1)[0]
    for suffix in NEAR_CHECKPOINT_SUFFIXES:
        candidate = os.path.join(directory, stem + suffix)
        if os.path.isfile(candidate):
            return candidate
    for vae_file in vae_dict.values():
        if os.path.basename(vae_file).startswith(stem + "."):
            return vae_file
    return None


@dataclasses.dataclass
class VaeResolution:
    vae: str = None
    source: str = None
    resolved: bool = True

    def tuple(self):
        return self.vae, self.source


def is_automatic():
    return shared.opts.sd_vae in {"Automatic", "auto"}


def resolve_vae_from_setting() -> VaeResolution:
    if shared.opts.sd_vae == "None":
        return VaeResolution()
    vae_from_options = vae_dict.get(shared.opts.sd_vae, None)
    if vae_from_options is not None:
        return VaeResolution(vae_from_options, "specified in settings")
    if not is_automatic():
        print(f"Couldn't find VAE named {shared.opts.sd_vae}; using None instead")
    return VaeResolution(resolved=False)


def resolve_vae_near_checkpoint(checkpoint_file) -> VaeResolution:
    vae_near_checkpoint = find_vae_near_checkpoint(checkpoint_file)
    if vae_near_checkpoint is not None and (not shared.opts.sd_vae_overrides_per_model_preferences or is_automatic()):
        return VaeResolution(vae_near_checkpoint, "found near the checkpoint")
    return VaeResolution(resolved=False)


def resolve_vae(checkpoint_file):
    """(vae_file or None, source description) for a checkpoint, by A1111's precedence."""
    if shared.cmd_opts.vae_path is not None:
        return VaeResolution(shared.cmd_opts.vae_path, "from commandline argument").tuple()
    if shared.opts.sd_vae_overrides_per_model_preferences and not is_automatic():
        return resolve_vae_from_setting().tuple()
    res = resolve_vae_near_checkpoint(checkpoint_file)
    if res.resolved:
        return res.tuple()
    return resolve_vae_from_setting().tuple()


def load_vae_dict(filename, map_location="cpu"):
    """A VAE file's weights with bare keys (encoder.*, decoder.*, quant_conv.*, post_quant_conv.*)."""
    vae_ckpt = sd_models.read_state_dict(filename, map_location=map_location)
    prefix = "first_stage_model."
    if any(k.startswith(prefix) for k in vae_ckpt):
        vae_ckpt = {k[len(prefix):]: v for k, v in vae_ckpt.items() if k.startswith(prefix)}
    result = {k: v for k, v in vae_ckpt.items() if not k.startswith("loss") and k not in vae_ignore_keys and not k.startswith("model_ema.")}
    if not any(k.startswith("decoder.") for k in result):
        if any(k.startswith("decoder.up_blocks.") or k.startswith("encoder.down_blocks.") for k in vae_ckpt):
            raise ValueError(f"{filename}: this VAE is in diffusers format; only VAEs in the original layout (encoder.down.*) are supported")
        raise ValueError(f"{filename}: not a VAE (no decoder.* weights)")
    for k, v in list(result.items()):
        if ".attn_1." in k and k.endswith(".weight") and v.ndim == 2:
            result[k] = v[:, :, None, None]  # Linear-style attention weights -> 1x1 conv
    return result


def store_base_vae(model):
    """Remember (by reference: no copy) the VAE weights the model has now, i.e. its checkpoint's own."""
    global base_vae, checkpoint_info
    base_vae = dict(model.first_stage_model.state_dict())
    checkpoint_info = getattr(model, "sd_checkpoint_info", None)


def delete_base_vae():
    global base_vae, checkpoint_info
    base_vae = None
    checkpoint_info = None


def restore_base_vae(model):
    global loaded_vae_file
    if base_vae is not None and checkpoint_info == getattr(model, "sd_checkpoint_info", None):
        _load_vae_dict(model, base_vae, "the checkpoint's own VAE")
        loaded_vae_file = None
    delete_base_vae()


def _load_vae_dict(model, vae_weights, source_name):
    device = model.first_stage_model.device  # where the VAE lives now (RAM while --medvram/--lowvram rest it there)
    try:
        model.first_stage_model.load_state_dict(vae_weights, strict=True, assign=True)
    except RuntimeError as e:
        raise ValueError(f"{source_name}: VAE weights do not fit this model's VAE: {e}") from None
    model.first_stage_model.to(device=device, dtype=devices.dtype_vae)
    model.first_stage_model.requires_grad_(False)


def load_vae(model, vae_file=None, vae_source="from unknown source"):
    """Put `vae_file`'s weights into model.first_stage_model, or restore the checkpoint's own VAE when vae_file is None."""
    global loaded_vae_file
    if vae_file:
        if not os.path.isfile(vae_file):
            raise FileNotFoundError(f"VAE {vae_source} doesn't exist: {vae_file}")
        print(f"Loading VAE weights {vae_source}: {vae_file}")
        vae_weights = load_vae_dict(vae_file, map_location=shared.weight_load_location or "cpu")
        if getattr(model, "loaded_vae_file", None) is None:
            store_base_vae(model)  # the model still has its checkpoint's own VAE: keep it for "None"
        _load_vae_dict(model, vae_weights, vae_file)
        vae_opt = get_filename(vae_file)
        if vae_opt not in vae_dict:
            vae_dict[vae_opt] = vae_file
    elif getattr(model, "loaded_vae_file", None):
        restore_base_vae(model)
    loaded_vae_file = vae_file
    shared.sd_vae = get_filename(vae_file) if vae_file else None
    model.base_vae = base_vae
    model.loaded_vae_file = loaded_vae_file


def resume_model(model):
    """A kept model becomes the one in use again (modules.loaded_models): this module's record of the loaded VAE
    becomes that model's, and the VAE the settings now choose for it is loaded if it has another."""
    global base_vae, loaded_vae_file, checkpoint_info
    base_vae, loaded_vae_file = model.base_vae, model.loaded_vae_file
    checkpoint_info = model.sd_checkpoint_info if model.base_vae is not None else None
    vae_file, vae_source = resolve_vae(model.sd_checkpoint_info.filename)
    if vae_file != model.loaded_vae_file:
        load_vae(model, vae_file, vae_source)


def clear_loaded_vae():
    global loaded_vae_file
    loaded_vae_file = None


def reload_vae_weights(sd_model=None, vae_file="auto"):
    """Apply the VAE choice to the loaded model: vae_file "auto" resolves it from settings and the checkpoint's name."""
    sd_model = sd_model or shared.sd_model
    if sd_model is None:
        return None
    checkpoint_file = sd_model.sd_checkpoint_info.filename if sd_model.sd_checkpoint_info else None
    if vae_file == "auto" or vae_file is unspecified:
        vae_file, vae_source = resolve_vae(checkpoint_file) if checkpoint_file else (None, None)
    else:
        vae_source = "from function argument"
    if getattr(sd_model, "loaded_vae_file", None) == vae_file:
        return sd_model

    sd_hijack.model_hijack.undo_hijack(sd_model)
    try:
        load_vae(sd_model, vae_file, vae_source)
    finally:
        sd_hijack.model_hijack.hijack(sd_model)
    try:
        script_callbacks.model_loaded_callback(sd_model)
    except Exception:
        errors.report("Error in model_loaded callbacks after reloading the VAE", exc_info=True)
    print("VAE weights loaded.")
    return sd_model
