"""Tensor helpers shared by the network types (A1111: the Lora extension's `lyco_helpers`)."""
import torch


def make_weight_cp(t, wa, wb):
    """A Tucker (CP) factorised conv kernel: core t [r, r, kh, kw] with factors wa [out, r] and wb [r, in]
    -> [out, in, kh, kw]."""
    temp = torch.einsum("i j k l, j r -> i r k l", t, wb)
    return torch.einsum("i j k l, i r -> r j k l", temp, wa)


def rebuild_conventional(up, down, shape, dyn_dim=None):
    """up @ down (each flattened to a matrix) reshaped to the layer's weight shape; dyn_dim keeps the first ranks."""
    up = up.reshape(up.size(0), -1)
    down = down.reshape(down.size(0), -1)
    if dyn_dim is not None:
        up = up[:, :dyn_dim]
        down = down[:dyn_dim, :]
    return (up @ down).reshape(shape)


def rebuild_cp_decomposition(up, down, mid):
    """LoCon with a Tucker mid kernel: up [out, r], mid [r, r, kh, kw], down [r, in] -> [out, in, kh, kw]."""
    up = up.reshape(up.size(0), -1)
    down = down.reshape(down.size(0), -1)
    return torch.einsum("n m k l, i n, m j -> i j k l", mid, up, down)
