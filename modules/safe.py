"""Loading .ckpt/.pt files without running code hidden in their pickles (A1111: modules.safe).

A pickle can name any Python callable and have the loader call it (os.system, builtins.eval, ...). The
restricted unpickler here resolves only the globals a plain weights file needs (torch's tensor rebuild functions
and storages, OrderedDict, numpy scalars/dtypes, `_codecs.encode`, `set`, Lightning's ModelCheckpoint record);
anything else is refused before it is called, with an error naming the file and the global.
`--disable-safe-unpickle` lifts the restriction.
"""
import collections
import pickle
import re
import zipfile

import torch

from modules import shared

unsafe_torch_load = torch.load


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file's pickle asks for something a weights file never needs; nothing was executed."""


class _LightningCheckpointRecord:
    """Stands in for pytorch_lightning's ModelCheckpoint, which old SD checkpoints pickle as training metadata."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


_TORCH_UTILS_ALLOWED = {
    "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
    "_rebuild_parameter_with_state", "_rebuild_device_tensor_from_numpy", "_rebuild_qtensor",
    "_rebuild_sparse_tensor", "_rebuild_wrapper_subclass", "_rebuild_meta_tensor_no_storage",
}
_NUMPY_ALLOWED = {
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
}

# Extensions may allow more, e.g. for their own model formats (A1111: safe.Extra).
extra_handler = None


def _is_allowed_torch_global(module, name):
    if module == "torch._utils":
        return name in _TORCH_UTILS_ALLOWED
    if module == "torch._tensor":
        return name == "_rebuild_from_type_v2"
    if module == "torch":
        return name.endswith("Storage") or name in ("Size", "device") or isinstance(getattr(torch, name, None), torch.dtype)
    if module == "torch.nn.modules.container":
        return name == "ParameterDict"
    if module == "torch.nn.parameter":
        return name == "Parameter"
    return False


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose find_class resolves only an allow-list of globals."""

    extra_handler = None

    def find_class(self, module, name):
        handler = self.extra_handler or extra_handler
        if handler is not None:
            res = handler(module, name)
            if res is not None:
                return res
        if _is_allowed_torch_global(module, name) or (module, name) in _NUMPY_ALLOWED:
            return super().find_class(module, name)
        if module == "numpy.dtypes" and name.endswith("DType"):
            return super().find_class(module, name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "_codecs" and name == "encode":
            return super().find_class(module, name)
        if module in ("builtins", "__builtin__") and name in ("set", "frozenset"):
            return set if name == "set" else frozenset
        if module.startswith("pytorch_lightning.callbacks") and name == "ModelCheckpoint":
            return _LightningCheckpointRecord
        if module == "pytorch_lightning.callbacks" and name == "model_checkpoint":
            return _LightningCheckpointRecord
        raise UnsafeCheckpointError(f"{module}.{name}")


_allowed_zip_names = re.compile(r"^([^/]+)/((data/\d+)|version|byteorder|\.data/serialization_id|\.format_version|\.storage_alignment|(data\.pkl))$")
_data_pkl = re.compile(r"^([^/]+)/data\.pkl$")


def check_zip_filenames(filename, names):
    for name in names:
        if not _allowed_zip_names.match(name):
            raise UnsafeCheckpointError(f"{filename}: unexpected file '{name}' inside the checkpoint archive; refusing to load it")


class _PickleModule:
    """The pickle-module interface torch.load calls, backed by the restricted unpickler."""

    __name__ = "modules.safe"
    Unpickler = RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file, **kwargs):
        return RestrictedUnpickler(file, **kwargs).load()


def _disable_safe_unpickle():
    return shared.cmd_opts.disable_safe_unpickle


def load(filename, *args, **kwargs):
    """torch.load for a file path through the restricted unpickler (plain torch.load with --disable-safe-unpickle)."""
    return load_with_extra(filename, None, *args, **kwargs)


def load_with_extra(filename, extra_handler=None, *args, **kwargs):
    """Like `load`; `extra_handler(module, name)` may return a class to allow a global the default list refuses."""
    filename = str(filename)
    kwargs.pop("weights_only", None)
    kwargs.pop("pickle_module", None)
    use_mmap = kwargs.pop("mmap", None)
    if _disable_safe_unpickle():
        return unsafe_torch_load(filename, *args, weights_only=False, **kwargs)

    is_zip = zipfile.is_zipfile(filename)
    if is_zip:
        try:
            with zipfile.ZipFile(filename) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"{filename}: damaged checkpoint archive ({e})") from None
        check_zip_filenames(filename, names)
        if not any(_data_pkl.match(n) for n in names):
            raise ValueError(f"{filename}: not a PyTorch checkpoint (no data.pkl inside)")

    pickle_module = _PickleModule
    if extra_handler is not None:
        class _WithExtra(RestrictedUnpickler):
            pass
        _WithExtra.extra_handler = staticmethod(extra_handler)

        class _ExtraModule(_PickleModule):
            Unpickler = _WithExtra

            @staticmethod
            def load(file, **kw):
                return _WithExtra(file, **kw).load()
        pickle_module = _ExtraModule

    try:
        return unsafe_torch_load(filename, *args, pickle_module=pickle_module, weights_only=False,
                                 mmap=is_zip if use_mmap is None else use_mmap, **kwargs)
    except UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(
            f"{filename}: refused to load: its pickle asks for the global '{e}', which a weights file never needs "
            f"(it could run code). Nothing from it was executed. If you trust this file, run with --disable-safe-unpickle."
        ) from None
    except pickle.UnpicklingError as e:
        raise ValueError(f"{filename}: not a valid PyTorch checkpoint (unpickling failed: {e})") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{filename}: not a valid PyTorch checkpoint (truncated or corrupt? {e})") from None


class Extra:
    """Context manager allowing more globals while it is active (A1111: safe.Extra):

        with safe.Extra(handler):
            x = torch.load(...)   # through modules.safe.load
    """

    def __init__(self, handler):
        self.handler = handler
        self.previous = None

    def __enter__(self):
        global extra_handler
        self.previous = extra_handler
        extra_handler = self.handler

    def __exit__(self, exc_type, exc_val, exc_tb):
        global extra_handler
        extra_handler = self.previous
