"""Read-only access to a checkpoint's tensors one at a time, whatever its file format (used by the merger).

.safetensors files are memory-mapped (modules.safetensors_stream); .ckpt/.pt files are loaded with torch's
memory-mapped, weights-only loader where their format allows it. Keys are normalized the way A1111's
read_state_dict does (a "state_dict" wrapper unwrapped, old CLIP key names renamed), so A and B line up.
"""
import os

import torch

from modules import safetensors_stream

# A1111 sd_models.checkpoint_dict_replacements_sd1: CLIP keys saved by old transformers versions.
KEY_REPLACEMENTS = {
    "cond_stage_model.transformer.embeddings.": "cond_stage_model.transformer.text_model.embeddings.",
    "cond_stage_model.transformer.encoder.": "cond_stage_model.transformer.text_model.encoder.",
    "cond_stage_model.transformer.final_layer_norm.": "cond_stage_model.transformer.text_model.final_layer_norm.",
}


class CheckpointReadError(ValueError):
    pass


def normalize_key(key: str) -> str:
    for old, new in KEY_REPLACEMENTS.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


class CheckpointReader:
    """keys(), dtype/shape via info(key), get_tensor(key) (read-only), release(key) after use, metadata."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.isfile(path):
            raise CheckpointReadError("file not found" if not os.path.exists(path) else "not a file")
        if not os.access(path, os.R_OK):
            raise CheckpointReadError("permission denied")
        self.metadata = {}
        self._st = None
        self._tensors = None
        if path.lower().endswith(".safetensors"):
            try:
                self._st = safetensors_stream.SafetensorsReader(path)
            except safetensors_stream.SafetensorsError as e:
                raise CheckpointReadError(str(e)) from None
            except OSError as e:
                raise CheckpointReadError(e.strerror or str(e)) from None
            self.metadata = dict(self._st.metadata)
            source_keys = self._st.keys()
        else:
            self._tensors = _load_torch_checkpoint(path)
            source_keys = list(self._tensors)
        self._source = {}
        for key in source_keys:
            self._source.setdefault(normalize_key(key), key)

    def keys(self):
        return list(self._source)

    def __contains__(self, key):
        return key in self._source

    def info(self, key):
        """(dtype, shape) without reading the data."""
        src = self._source[key]
        if self._st is not None:
            i = self._st.info(src)
            return i.dtype, i.shape
        t = self._tensors[src]
        return t.dtype, tuple(t.shape)

    def get_tensor(self, key) -> torch.Tensor:
        src = self._source[key]
        return self._st.get_tensor(src) if self._st is not None else self._tensors[src]

    def raw(self, key):
        """The tensor's bytes without a copy when the file allows it, else None."""
        return self._st.raw(self._source[key]) if self._st is not None else None

    def release(self, key):
        if self._st is not None:
            self._st.release(self._source[key])

    def close(self):
        if self._st is not None:
            self._st.close()
        self._tensors = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _load_torch_checkpoint(path):
    """Tensors of a pickled checkpoint: memory-mapped and weights-only when possible, else A1111's loader."""
    try:
        try:
            obj = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except RuntimeError as e:
            if "mmap" not in str(e) and "zip" not in str(e):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception:  # noqa: BLE001 - anything torch.load raises means "cannot read"
        obj = _load_with_sd_models(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointReadError("not a checkpoint (no state dict inside)")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointReadError("not a checkpoint (no tensors inside)")
    return tensors


def _load_with_sd_models(path):
    """Old checkpoints pickle a few harmless extra classes that torch's weights-only loader refuses."""
    from modules import sd_models
    try:
        return sd_models.read_state_dict(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001
        raise CheckpointReadError(f"cannot load it: {e}") from None
