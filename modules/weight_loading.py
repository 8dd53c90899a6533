"""A checkpoint's tensors, memory-mapped, then converted one at a time to the dtype and device each part runs in.

Loading a 2 GB fp16 SD1.5 file into an fp32 model on the CPU used to keep the whole mapped file resident beside the
whole fp32 copy (peak RSS 3.4x the file). Here each tensor's file pages are handed back as soon as its converted copy
exists, so the peak is the converted model plus one tensor. A tensor that needs no conversion stays a (copy-on-write)
view of the file: no copy at all.
"""
import functools

import torch

from modules import safetensors_stream

# Set on each tensor read from a mapped file: a callable that drops that tensor's pages from this process. Views and
# slices do not carry it, so only the original tensor object can release its pages.
_RELEASE_ATTRIBUTE = "_release_file_pages"


def read_safetensors(path, device="cpu") -> dict:
    """{key: tensor} of a safetensors file: views of a private memory map on the CPU, copies on any other device.

    Raises ValueError naming the file when it is not a readable safetensors file."""
    try:
        reader = safetensors_stream.SafetensorsReader(path, copy_on_write=True)
    except (safetensors_stream.SafetensorsError, OSError) as e:
        raise ValueError(f"{path}: not a valid safetensors file (truncated or corrupt? {e})") from None
    on_cpu = torch.device(device).type == "cpu"
    state_dict = {}
    for key in reader.keys():
        tensor = reader.get_tensor(key)
        if on_cpu:
            setattr(tensor, _RELEASE_ATTRIBUTE, functools.partial(reader.release, key))
        else:
            tensor = tensor.to(device)
            reader.release(key)
        state_dict[key] = tensor
    return state_dict


def release_file_pages(tensor):
    """Give back the pages of a tensor read by read_safetensors (no-op for any other tensor)."""
    release = getattr(tensor, _RELEASE_ATTRIBUTE, None)
    if release is not None:
        release()


def converted(state_dict, placement_for_key) -> dict:
    """The state dict with each tensor on the device and in the dtype placement_for_key(key) -> (device, dtype) names
    (keys it maps to None are left out). Integer tensors keep their dtype. A converted tensor's file pages are
    released right away; a tensor already in place is passed on as it is."""
    result = {}
    for key, tensor in state_dict.items():
        placement = placement_for_key(key)
        if placement is None:
            continue
        device, dtype = placement
        new = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)
        if new is not tensor:
            release_file_pages(tensor)
        result[key] = new
    return result
