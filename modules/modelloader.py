"""Finding model files on disk and loading upscaler networks (A1111: modules.modelloader).

Nothing is ever downloaded: a model whose file is not in its folder is simply not listed. Network weights are read
safely (safetensors, or a pickle through a restricted unpickler that only builds tensors) and the architecture is
recognised from the weights by spandrel.
"""
import importlib
import os
import pickle
import zipfile

import torch

from modules import errors, shared

upscaler_extensions = [".pt", ".pth", ".safetensors", ".ckpt"]


def friendly_name(file: str):
    """'models/ESRGAN/4x_foo.pth' -> '4x_foo'."""
    if file.startswith("http"):
        file = file.rsplit("/", 1)[-1]
    return os.path.splitext(os.path.basename(file))[0]


def load_models(model_path: str, model_url: str = None, command_path: str = None, ext_filter=None,
                download_name=None, ext_blacklist=None, hash_prefix=None) -> list:
    """Model files in `command_path` (a --*-models-path flag) and `model_path`, local only (no download)."""
    output = []
    try:
        places = []
        if command_path is not None and command_path != model_path:
            pretrained_path = os.path.join(command_path, "experiments/pretrained_models")
            if os.path.exists(pretrained_path):
                places.append(pretrained_path)
            elif os.path.exists(command_path):
                places.append(command_path)
        if model_path:
            places.append(model_path)
        for place in places:
            for full_path in shared.walk_files(place, allowed_extensions=ext_filter):
                if os.path.islink(full_path) and not os.path.exists(full_path):
                    continue
                if ext_blacklist is not None and any(full_path.endswith(x) for x in ext_blacklist):
                    continue
                if full_path not in output:
                    output.append(full_path)
    except Exception:
        errors.report(f"Error listing models in {model_path}", exc_info=True)
    return output


# --- reading weights safely ------------------------------------------------------------------------------------------

class ModelFileError(RuntimeError):
    """A model file that cannot be used; the message names the file and the reason."""


def _load_pickle_safely(path):
    """A .pth/.pt/.ckpt through torch's restricted (weights_only) unpickler: tensors and plain containers only,
    never code. --disable-safe-unpickle lifts the restriction, as in A1111."""
    if shared.cmd_opts.disable_safe_unpickle:
        return torch.load(path, map_location="cpu", weights_only=False)
    return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict_for_upscaler(path):
    """Read the weights in `path` into a state dict, with a clear error for every way a file can be bad."""
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: model file not found")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".safetensors":
            import safetensors.torch
            state_dict = safetensors.torch.load_file(path, device="cpu")
        elif ext in (".pth", ".pt", ".ckpt", ".bin"):
            state_dict = _load_pickle_safely(path)
        else:
            raise ModelFileError(f"{path}: unsupported model file type {ext!r}; expected .safetensors, .pth, .pt or .ckpt")
    except ModelFileError:
        raise
    except pickle.UnpicklingError as e:
        raise ModelFileError(f"{path}: refused to load; the file contains code or objects other than tensors ({str(e).splitlines()[0]})") from e
    except (EOFError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"{path}: the file is truncated or damaged ({type(e).__name__}: {e})") from e
    except Exception as e:  # safetensors and torch report truncation as various errors
        raise ModelFileError(f"{path}: could not be read as model weights; the file may be truncated or not a model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if not isinstance(state_dict, dict):
        raise ModelFileError(f"{path}: does not contain a state dict (found {type(state_dict).__name__})")
    return state_dict


def load_spandrel_model(path, *, device, prefer_half: bool = False, dtype=None, expected_architecture: str = None):
    """Load an image model from `path` with spandrel; the architecture is read from the weights.

    Raises ModelFileError when the file is unreadable, unsafe or not an image-to-image model.
    """
    import spandrel

    state_dict = read_state_dict_for_upscaler(path)
    try:
        state_dict = spandrel.canonicalize_state_dict(state_dict)
        descriptor = spandrel.MAIN_REGISTRY.load(state_dict)
    except spandrel.UnsupportedModelError as e:
        raise ModelFileError(f"{path}: not an upscaler model of any known architecture (ESRGAN, Real-ESRGAN, DAT, SwinIR, HAT, ...)") from e
    except Exception as e:
        raise ModelFileError(f"{path}: the weights look like an upscaler but could not be loaded ({type(e).__name__}: {e})") from e

    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelFileError(f"{path}: is a {descriptor.architecture.name} model ({descriptor.purpose}), not an image upscaler")
    arch_name = descriptor.architecture.name
    if expected_architecture and expected_architecture not in (arch_name, descriptor.architecture.id):
        print(f"Model {path} is of architecture {arch_name}, which is not {expected_architecture} as expected; using it anyway")

    half = prefer_half and descriptor.supports_half and torch.device(device).type != "cpu"
    if half:
        descriptor.model.half()
    if dtype is not None and not half:
        descriptor.model.to(dtype=dtype)
    descriptor.model.eval()
    descriptor.to(device)
    return descriptor


# --- the upscaler registry ---------------------------------------------------------------------------------------

def load_upscalers():
    """Find every Upscaler subclass (built-in `modules/*_model.py` files and extensions) and fill `shared.sd_upscalers`:
    None, Lanczos, Nearest first, then the others by name."""
    from modules.upscaler import Upscaler, UpscalerLanczos, UpscalerNearest, UpscalerNone

    modules_dir = os.path.join(shared.script_path, "modules")
    for file in sorted(os.listdir(modules_dir)):
        if file.endswith("_model.py"):
            try:
                importlib.import_module(f"modules.{file[:-3]}")
            except Exception:
                errors.report(f"Error importing modules/{file}", exc_info=True)

    data = []
    commandline_options = vars(shared.cmd_opts)

    # reloaded modules leave stale copies of their classes behind; the newest definition of each name wins
    used_classes = {}
    for cls in reversed(Upscaler.__subclasses__()):
        used_classes.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)

    for cls in reversed(list(used_classes.values())):
        name = cls.__name__
        cmd_name = f"{name.lower().replace('upscaler', '')}_models_path"
        commandline_model_path = commandline_options.get(cmd_name, None)
        try:
            scaler = cls(commandline_model_path)
        except Exception:
            errors.report(f"Error creating upscaler {name}", exc_info=True)
            continue
        scaler.user_path = commandline_model_path
        scaler.model_download_path = commandline_model_path or scaler.model_path
        data += scaler.scalers

    builtin = (UpscalerNone, UpscalerLanczos, UpscalerNearest)
    order = {UpscalerNone: 0, UpscalerLanczos: 1, UpscalerNearest: 2}
    shared.sd_upscalers = sorted(
        data,
        key=lambda x: (0, order.get(type(x.scaler), 3), "") if isinstance(x.scaler, builtin) else (1, 0, x.name.lower()),
    )
    return shared.sd_upscalers



# --- a small cache so repeated upscales (tiles, batches, hires fix) do not reload the file -------------------------

_model_cache = {}  # (path, mtime, size, device, prefer_half) -> descriptor; holds the most recently used model only


def load_upscaler_model_cached(path, *, device, prefer_half=False, expected_architecture=None):
    """load_spandrel_model, remembering the last model loaded; a changed file on disk is read again."""
    stat = os.stat(path) if os.path.exists(path) else None
    key = (os.path.realpath(path), stat and stat.st_mtime_ns, stat and stat.st_size, str(device), prefer_half)
    model = _model_cache.get(key)
    if model is None:
        _model_cache.clear()
        model = load_spandrel_model(path, device=device, prefer_half=prefer_half, expected_architecture=expected_architecture)
        _model_cache[key] = model
    return model


def unload_upscaler_models():
    _model_cache.clear()


def load_file_from_url(url: str, *, model_dir: str, progress: bool = True, file_name: str = None, hash_prefix: str = None) -> str:
    """A1111 downloads `url` into `model_dir`; this program downloads nothing at run time, so the file must already be
    there (under `file_name` or the URL's last part): its path is returned, or an error says where to put it."""
    from urllib.parse import urlparse
    file_name = file_name or os.path.basename(urlparse(url).path)
    cached = os.path.abspath(os.path.join(model_dir, file_name))
    if os.path.exists(cached):
        return cached
    raise ModelFileError(f"{file_name} is not in {model_dir}: this program does not download models; "
                         f"get it from {url} and put it there")
