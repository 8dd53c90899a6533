"""Replacing a function or method attribute while remembering the original (A1111: modules.patches).

    original_forward = patches.patch(__name__, torch.nn.Linear, "forward", my_forward)
    patches.original(__name__, torch.nn.Linear, "forward")   # -> the function that was replaced
    patches.undo(__name__, torch.nn.Linear, "forward")       # puts it back

`key` (usually the caller's module name) keeps different patchers of the same attribute apart.
"""
from collections import defaultdict

originals = defaultdict(dict)  # key -> {(obj, field): the replaced value}


def patch(key, obj, field, replacement):
    """Set obj.field = replacement; returns the value it replaced. Patching the same (key, obj, field) twice is an
    error: undo it first."""
    patch_key = (obj, field)
    if patch_key in originals[key]:
        raise RuntimeError(f"patch for {field} is already applied")
    original_func = getattr(obj, field)
    originals[key][patch_key] = original_func
    setattr(obj, field, replacement)
    return original_func


def undo(key, obj, field):
    """Put back what `patch` replaced."""
    patch_key = (obj, field)
    if patch_key not in originals[key]:
        raise RuntimeError(f"there is no patch for {field} to undo")
    setattr(obj, field, originals[key].pop(patch_key))


def original(key, obj, field):
    """The value `patch` replaced, or None if (key, obj, field) is not patched."""
    return originals[key].get((obj, field))
