"""Small tensor helpers shared by the samplers and denoiser wrappers (k-diffusion's `k_diffusion.utils` names)."""
import torch


def append_dims(x, target_dims):
    """Append singleton dimensions to `x` until it has `target_dims` dimensions (to broadcast a per-image sigma)."""
    dims_to_append = target_dims - x.ndim
    if dims_to_append < 0:
        raise ValueError(f"input has {x.ndim} dims but target_dims is {target_dims}, which is less")
    return x[(...,) + (None,) * dims_to_append]


def append_zero(x):
    """`x` with a trailing 0 (the final noise level of a schedule)."""
    return torch.cat([x, x.new_zeros([1])])
