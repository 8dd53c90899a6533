"""The checkpoint merger's formulas, one tensor at a time (A1111: theta_funcs in modules/extras.py).

M is the multiplier from the UI: the weight of B. Blends are A + (B − A)·w (torch.lerp); w = 0 and w = 1 copy A
and B, so the ends reproduce the inputs exactly. merge_into() is what the streamed merger runs per tensor.
"""
import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch


def smoothstep(m: float) -> float:
    """Sigmoid's weight of B: 3M² − 2M³ (A1111's historic "Sigmoid"), exactly 0 and 1 at the ends."""
    m = min(max(float(m), 0.0), 1.0)
    if m in (0.0, 1.0):
        return m
    return m * m * (3.0 - 2.0 * m)


def inverse_smoothstep(m: float) -> float:
    """Inverse sigmoid's weight of B: 0.5 − sin(asin(1 − 2M) / 3), the inverse function of smoothstep."""
    m = min(max(float(m), 0.0), 1.0)
    if m in (0.0, 1.0):
        return m
    return 0.5 - math.sin(math.asin(1.0 - 2.0 * m) / 3.0)


CHUNK = 1 << 20  # elements per step of merge_into: small enough to stay in cache, large enough to vectorize


def compute_dtype_for(*tensors):
    """Merges compute in float32 (float64 when an input is): fp16/bf16 weights are not blended at their own precision."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


class Scratch:
    """Reusable buffers, so merging a thousand tensors does not allocate (and page-fault) a thousand times."""

    def __init__(self):
        self._buffers = {}

    def get(self, name, dtype, numel):
        buf = self._buffers.get((name, dtype))
        if buf is None or buf.numel() < numel:
            buf = torch.empty(max(numel, 1), dtype=dtype)
            self._buffers[(name, dtype)] = buf
        return buf[:numel]


def merge_into(out, method_id, a, b, c=None, m=0.0, scratch=None, chunk=CHUNK):
    """Write the method's result for A, B (and C for add difference) into `out`, chunk by chunk.

    Weight 0 gives exactly A and weight 1 exactly B (copied, not computed)."""
    m = float(m)
    if method_id == "add_difference":
        if m == 0.0:
            return out.copy_(a)
    else:
        w = {"weighted_sum": min(max(m, 0.0), 1.0), "sigmoid": smoothstep(m), "inverse_sigmoid": inverse_smoothstep(m)}[method_id]
        if w == 0.0:
            return out.copy_(a)
        if w == 1.0:
            return out.copy_(b)
        if a.dtype == b.dtype == out.dtype and a.dtype != torch.float64:
            # lerp computes fp16/bf16 in float32 internally and rounds once: no buffers needed
            return torch.lerp(a, b, w, out=out)
    scratch = scratch or Scratch()
    cd = compute_dtype_for(a, b, c, out)
    fa, fb, fc, fo = a.reshape(-1), b.reshape(-1), c.reshape(-1) if c is not None else None, out.view(-1)
    n = fo.numel()
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        ta = scratch.get("a", cd, end - start).copy_(fa[start:end])
        tb = scratch.get("b", cd, end - start).copy_(fb[start:end])
        if method_id == "add_difference":
            if fc is not None:
                tb.sub_(scratch.get("c", cd, end - start).copy_(fc[start:end]))
            ta.add_(tb, alpha=m)
        else:
            torch.lerp(ta, tb, w, out=ta)
        fo[start:end].copy_(ta)
    return out


def blend(a: torch.Tensor, b: torch.Tensor, w: float, compute_dtype=torch.float32) -> torch.Tensor:
    """A·(1−w) + B·w as a new tensor in compute_dtype."""
    out = torch.empty(a.shape, dtype=compute_dtype)
    return merge_into(out, "weighted_sum", a, b, m=float(w))


def weighted_sum(a, b, m, compute_dtype=torch.float32):
    return blend(a, b, float(m), compute_dtype)


def sigmoid(a, b, m, compute_dtype=torch.float32):
    return blend(a, b, smoothstep(m), compute_dtype)


def inverse_sigmoid(a, b, m, compute_dtype=torch.float32):
    return blend(a, b, inverse_smoothstep(m), compute_dtype)


def get_difference(b: torch.Tensor, c: Optional[torch.Tensor], compute_dtype=torch.float32) -> torch.Tensor:
    """B − C; a key C lacks counts as zeros there (A1111), so the difference is B itself."""
    out = b.to(compute_dtype, copy=True)
    if c is not None:
        out.sub_(c)
    return out


def add_difference(a, diff, m, compute_dtype=torch.float32):
    """A + (B − C)·M, given diff = B − C."""
    out = torch.empty(a.shape, dtype=compute_dtype)
    return merge_into(out, "add_difference", a, diff, None, m)


@dataclass(frozen=True)
class MergeMethod:
    id: str                 # CLI and API name
    label: str              # UI label, also written as interp_method in the merge recipe
    needs_b: bool
    needs_c: bool
    description: str        # the formula shown under the radio
    func: Optional[Callable]  # (a, b_or_diff, m, compute_dtype) -> tensor; None for "No interpolation"


METHODS = {
    "no_interpolation": MergeMethod("no_interpolation", "No interpolation", False, False, "A", None),
    "weighted_sum": MergeMethod("weighted_sum", "Weighted sum", True, False, "A * (1 - M) + B * M", weighted_sum),
    "sigmoid": MergeMethod("sigmoid", "Sigmoid", True, False, "A + (B - A) * (3M² - 2M³)", sigmoid),
    "inverse_sigmoid": MergeMethod("inverse_sigmoid", "Inverse sigmoid", True, False, "A + (B - A) * (0.5 - sin(asin(1 - 2M) / 3))", inverse_sigmoid),
    "add_difference": MergeMethod("add_difference", "Add difference", True, True, "A + (B - C) * M", add_difference),
}


def get_method(name: str) -> MergeMethod:
    """A method by id ("weighted_sum") or UI label ("Weighted sum", any case)."""
    key = str(name or "").strip().lower().replace(" ", "_").replace("-", "_")
    if key in METHODS:
        return METHODS[key]
    valid = ", ".join(f"{m.id} ({m.label})" for m in METHODS.values())
    raise ValueError(f"Unknown interpolation method {name!r}; expected one of: {valid}")


def method_weight(method: MergeMethod, m: float) -> float:
    """The weight of B a two-model method applies for multiplier M (for display and tests)."""
    return {"weighted_sum": float(m), "sigmoid": smoothstep(m), "inverse_sigmoid": inverse_smoothstep(m)}.get(method.id, float(m))
