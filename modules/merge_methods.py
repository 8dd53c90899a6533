"""The checkpoint merger's formulas, one tensor at a time (A1111: theta_funcs in modules/extras.py).

M is the multiplier from the UI: the weight of B. Blends are written as A·(1−w) + B·w so that w = 0 and w = 1
give exactly A and exactly B (A + (B − A)·w is the same number mathematically, but not in floating point).
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


def blend(a: torch.Tensor, b: torch.Tensor, w: float, compute_dtype=torch.float32) -> torch.Tensor:
    """A·(1−w) + B·w in compute_dtype (inputs are not modified)."""
    if w == 0.0:
        return a.to(compute_dtype, copy=True)
    if w == 1.0:
        return b.to(compute_dtype, copy=True)
    out = a.to(compute_dtype, copy=True).mul_(1.0 - w)
    return out.add_(b, alpha=w)  # mixed dtypes promote into out's dtype without a temporary copy of b


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
    m = float(m)
    out = a.to(compute_dtype, copy=True)
    if m != 0.0:
        out.add_(diff, alpha=m)
    return out


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
