"""What a merge will write, decided from the inputs' headers alone, before any weight is read.

Every output tensor's source, dtype and shape is known up front (A1111's key rules, modules/extras.py), so the
output's header can be written first and the weights streamed after it, and every error about mismatched models
is raised before a byte is written.
"""
import re
from dataclasses import dataclass, field

import torch

from modules import model_families

# A1111 sd_models.checkpoint_dict_skip_on_merge: integer ids, never blended.
SKIP_ON_MERGE = ["cond_stage_model.transformer.text_model.embeddings.position_ids",
                 "conditioner.embedders.0.transformer.text_model.embeddings.position_ids"]

# A VAE file's own bookkeeping, never baked in (A1111 sd_vae.vae_ignore_keys and "loss*").
VAE_IGNORE_KEYS = {"model_ema.decay", "model_ema.num_updates"}


class MergeError(Exception):
    """A problem with the user's request or inputs; the message is meant to be shown as is."""


@dataclass
class Entry:
    kind: str            # "copy" (from A), "merge", "merge_channels" (first in-channels of a 9/8-ch A), "vae"
    dtype: torch.dtype   # output dtype
    shape: tuple         # output shape
    diff: bool = False   # add difference: B − C instead of B
    in_c: bool = False   # add difference: C has the key
    src: str = None      # "vae": the key in the VAE file


@dataclass
class MergePlan:
    entries: dict = field(default_factory=dict)   # key -> Entry, the output's tensors
    is_inpainting: bool = False
    is_instruct_pix2pix: bool = False


def guess_family(keys) -> str | None:
    """The family's name from the family table (SD1.x, SD2.x, SDXL, SDXL refiner, or an architecture we recognise but
    do not run, such as SD3); None when the keys say nothing (not an SD checkpoint?)."""
    keys = list(keys)
    other = model_families.unsupported_family_of_keys(keys)
    if other is not None:
        return other
    family = model_families.family_of_keys(keys)
    return family.label if family is not None else None


def to_half_dtype(dtype, save_as_half):
    """A1111's to_half: only float32 becomes float16."""
    return torch.float16 if save_as_half and dtype == torch.float32 else dtype


def _mergeable(key, a_dtype, b_dtype):
    # A1111 merges keys containing 'model'; integer buffers (step counters, ids) are kept from A, not averaged.
    return "model" in key and key not in SKIP_ON_MERGE and a_dtype.is_floating_point and b_dtype.is_floating_point


def _channel_case(a_shape, b_shape):
    """True when two shapes differ only in dimension 1 (input channels of a conv weight)."""
    return len(a_shape) >= 2 and len(a_shape) == len(b_shape) and a_shape[:1] + a_shape[2:] == b_shape[:1] + b_shape[2:]


def _describe_mismatches(mismatches, first, second):
    shown = "; ".join(f"{k}: {first}={list(sa)} {second}={list(sb)}" for k, sa, sb in mismatches[:3])
    more = f" (and {len(mismatches) - 3} more)" if len(mismatches) > 3 else ""
    return f"{len(mismatches)} weights have different shapes: {shown}{more}"


def check_families(readers: dict):
    """readers: {"A": reader, ...}; different model families cannot be merged."""
    families = {role: guess_family(r.keys()) for role, r in readers.items()}
    known = {role: f for role, f in families.items() if f}
    if len(set(known.values())) > 1:
        desc = ", ".join(f"{role} is {f}" for role, f in known.items())
        raise MergeError(f"Cannot merge checkpoints of different model families: {desc}.")


def plan_merge(method, a, b=None, c=None, *, save_as_half=False, vae=None, vae_name="VAE", discard_weights="") -> MergePlan:
    """The output tensors of merging readers a, b, c with merge_methods.MergeMethod `method`."""
    plan = MergePlan()
    readers = {"A": a}
    if method.needs_b:
        if b is None:
            raise MergeError("Failed: Merging requires a secondary model.")
        readers["B"] = b
    if method.needs_c:
        if c is None:
            raise MergeError(f"Failed: Interpolation method ({method.label}) requires a tertiary model.")
        readers["C"] = c
    check_families(readers)

    b_info = {k: b.info(k) for k in b.keys()} if method.needs_b else {}
    c_info = {k: c.info(k) for k in c.keys()} if method.needs_c else {}

    if method.needs_c:
        bc_mismatch = [(k, b_info[k][1], c_info[k][1]) for k in b_info if k in c_info and "model" in k
                       and k not in SKIP_ON_MERGE and tuple(b_info[k][1]) != tuple(c_info[k][1])]
        if bc_mismatch:
            raise MergeError("Models B and C do not match: " + _describe_mismatches(bc_mismatch, "B", "C"))

    mismatches = []
    shared = 0
    for key in a.keys():
        a_dtype, a_shape = a.info(key)
        a_shape = tuple(a_shape)
        if key not in b_info or not _mergeable(key, a_dtype, b_info[key][0]):
            plan.entries[key] = Entry("copy", a_dtype, a_shape)
            continue
        shared += 1
        b_dtype, b_shape = b_info[key][0], tuple(b_info[key][1])
        in_c = key in c_info
        out_dtype = torch.promote_types(a_dtype, b_dtype)
        if in_c:
            out_dtype = torch.promote_types(out_dtype, c_info[key][0])
        if a_shape == b_shape:
            plan.entries[key] = Entry("merge", to_half_dtype(out_dtype, save_as_half), a_shape, method.needs_c, in_c)
        elif _channel_case(a_shape, b_shape) and {a_shape[1], b_shape[1]} in ({4, 9}, {4, 8}):
            if a_shape[1] == 4:
                kind = "inpainting" if b_shape[1] == 9 else "instruct-pix2pix"
                raise MergeError(f"When merging {kind} model with a normal one, A must be the {kind} model.")
            plan.is_inpainting |= a_shape[1] == 9
            plan.is_instruct_pix2pix |= a_shape[1] == 8
            # channels 0-3 are blended into A's tensor in place, so A's dtype is kept (A1111)
            plan.entries[key] = Entry("merge_channels", to_half_dtype(a_dtype, save_as_half), a_shape, method.needs_c, in_c)
        else:
            mismatches.append((key, a_shape, b_shape))

    if method.needs_b:
        if mismatches:
            raise MergeError("Models A and B do not match: " + _describe_mismatches(mismatches, "A", "B"))
        if shared == 0:
            raise MergeError("Model B shares no weights with model A: is it a Stable Diffusion checkpoint of the same kind?")

    if vae is not None:
        _plan_vae(plan, vae, vae_name, save_as_half)

    if save_as_half and not method.needs_b:  # "No interpolation": A1111 halves every float32 tensor
        for entry in plan.entries.values():
            entry.dtype = to_half_dtype(entry.dtype, True)

    if discard_weights:
        try:
            regex = re.compile(discard_weights)
        except re.error as e:
            raise MergeError(f"Discard weights: {discard_weights!r} is not a valid regular expression ({e}).") from None
        plan.entries = {k: e for k, e in plan.entries.items() if not regex.search(k)}
        if not plan.entries:
            raise MergeError(f"Discard weights: {discard_weights!r} matches every weight; nothing would be saved.")
    return plan


def vae_keys(vae):
    """The keys of a VAE file that can be baked in (A1111 load_vae_dict)."""
    return [k for k in vae.keys() if not k.startswith("loss") and k not in VAE_IGNORE_KEYS]


def _plan_vae(plan, vae, vae_name, save_as_half):
    baked = 0
    for k in vae_keys(vae):
        key = k if k.startswith("first_stage_model.") else "first_stage_model." + k  # bare or prefixed VAE files
        if key not in plan.entries:
            continue
        dtype, shape = vae.info(k)
        if tuple(shape) != plan.entries[key].shape:
            raise MergeError(f"Bake in VAE: {vae_name} does not fit this model ({k}: VAE {list(shape)}, model {list(plan.entries[key].shape)}).")
        plan.entries[key] = Entry("vae", to_half_dtype(dtype, save_as_half), tuple(shape), src=k)
        baked += 1
    if baked == 0:
        raise MergeError(f"Bake in VAE: {vae_name} has no weights matching the model's VAE (first_stage_model.*).")
