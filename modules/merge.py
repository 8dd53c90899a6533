"""The checkpoint merger: streams A, B (and C) tensor by tensor into a new checkpoint, in bounded memory.

    python -m modules.merge A B [C] --method weighted_sum --multiplier 0.3 --out merged.safetensors

Inputs are memory-mapped and read one tensor at a time; the output's header is written first (its layout is
planned from the inputs' headers, modules/merge_plan.py) and each tensor is appended as soon as it is computed,
so peak memory is a few tensors, not whole models. The file is written under a temporary name in the output
folder and renamed when complete: a failed or interrupted merge never leaves a partial file under the final name.
A1111's entry point, extras.run_modelmerger, is a thin wrapper over merge_checkpoints() below.
"""
import argparse
import contextlib
import errno
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field

import torch

from modules import merge_methods, safetensors_stream
from modules.checkpoint_reader import CheckpointReader, CheckpointReadError
from modules.merge_inputs import (  # noqa: F401  (re-exported: the merger's public names live here)
    ROLES, InputModel, build_metadata, checkpoints_dir, copy_config, list_vae_files, output_basename,
    resolve_checkpoint, resolve_vae,
)
from modules.merge_plan import MergeError, plan_merge, vae_keys

class MergeInterrupted(MergeError):
    pass


@dataclass
class MergeResult:
    filename: str
    is_inpainting: bool = False
    is_instruct_pix2pix: bool = False
    seconds: float = 0.0
    metadata: dict = field(default_factory=dict)


def _open(model: InputModel, role):
    try:
        return CheckpointReader(model.filename)
    except CheckpointReadError as e:
        raise MergeError(f"Cannot read {ROLES.get(role, role)} {model.filename}: {e}.") from None


def _produce(key, entry, method, multiplier, a, b, c, vae, scratch):
    """The output tensor (or raw bytes, when A's bytes can be copied as they are) for one planned entry.

    Computed tensors live in reusable scratch memory: the writer consumes each one before the next is made."""
    def out_buffer(shape):
        n = 1
        for d in shape:
            n *= d
        return scratch.get("out", entry.dtype, n).view(shape)

    if entry.kind == "vae":
        return out_buffer(entry.shape).copy_(vae.get_tensor(entry.src))
    if entry.kind == "copy":
        a_dtype, _ = a.info(key)
        if a_dtype == entry.dtype:
            raw = a.raw(key)
            return raw if raw is not None else a.get_tensor(key)
        return out_buffer(entry.shape).copy_(a.get_tensor(key))
    ta, tb = a.get_tensor(key), b.get_tensor(key)
    tc = c.get_tensor(key) if entry.diff and entry.in_c else None  # a key C lacks counts as zeros (A1111): B − C = B
    if entry.kind == "merge_channels":
        # A1111 blends the first 4 input channels into A's tensor, in A's dtype, and keeps the others
        part = torch.empty(tb.shape, dtype=ta.dtype)
        merge_methods.merge_into(part, method.id, ta[:, 0:4].contiguous(), tb, tc, multiplier, scratch)
        out = out_buffer(entry.shape).copy_(ta)
        out[:, 0:4] = part
        return out
    return merge_methods.merge_into(out_buffer(entry.shape), method.id, ta, tb, tc, multiplier, scratch)


def write_plan(plan, path, *, method, multiplier, a, b=None, c=None, vae=None, metadata=None,
               overwrite=False, progress=None, should_stop=None):
    """Stream the planned tensors into `path` (safetensors) through a temporary file renamed at the end."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    specs = {k: (e.dtype, e.shape) for k, e in plan.entries.items()}
    header = safetensors_stream.build_header(specs, metadata)
    total = len(header) + sum(safetensors_stream.tensor_nbytes(*s) for s in specs.values())
    free = shutil.disk_usage(folder).free
    if free < total:
        raise MergeError(f"Not enough disk space in {folder}: the merged checkpoint needs {_gb(total)}, {_gb(free)} free.")

    tmp = _temp_name(path)
    # The disk is the bottleneck; one thread keeps the arithmetic well ahead of it, and avoids OpenMP's
    # per-op barriers, which stall 10-50x when the cores are shared with other work (measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with open(tmp, "xb") as f:
            writer = safetensors_stream.SafetensorsWriter(f, specs, metadata)
            done = len(header)
            scratch = merge_methods.Scratch()
            for i, key in enumerate(writer.order):
                if should_stop is not None and should_stop():
                    raise MergeInterrupted("Merge interrupted; nothing was saved.")
                entry = plan.entries[key]
                writer.write(key, _produce(key, entry, method, multiplier, a, b, c, vae, scratch))
                for reader, k in ((a, key), (b, key), (c, key), (vae, entry.src)):
                    if reader is not None and k is not None and k in reader:
                        reader.release(k)
                done += safetensors_stream.tensor_nbytes(*specs[key])
                if progress is not None:
                    progress(done / total, f"Merging {i + 1}/{len(writer.order)}: {key}")
            writer.finish()
            os.fsync(f.fileno())
        _publish(tmp, path, overwrite)
    except BaseException as e:
        _remove_quietly(tmp)
        if isinstance(e, OSError):
            if e.errno == errno.ENOSPC:
                raise MergeError(f"Disk full while writing {path}; the partial file was removed.") from None
            raise MergeError(f"Could not write {path}: {e.strerror or e}.") from None
        raise
    finally:
        torch.set_num_threads(threads)


def _publish(tmp, path, overwrite):
    """Move the finished temporary file to its final name, refusing to replace a file unless told to."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails atomically if `path` appeared meanwhile
        os.unlink(tmp)
    except FileExistsError:
        raise MergeError(f"{path} already exists; choose another name or allow overwriting.") from None
    except OSError:
        if os.path.exists(path):
            raise MergeError(f"{path} already exists; choose another name or allow overwriting.") from None
        os.rename(tmp, path)  # filesystems without hard links


def _temp_name(path):
    """A hidden name beside `path` (same folder, so the final rename is atomic and never crosses disks)."""
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp")


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _gb(n):
    return f"{n / 1024 ** 3:.2f} GB"


def _save_ckpt_from_safetensors(st_path, path, overwrite):
    """A .ckpt as A1111 writes it (torch.save of the bare state dict), from the finished safetensors file."""
    tmp = _temp_name(path)
    try:
        with safetensors_stream.SafetensorsReader(st_path) as reader:
            state_dict = {k: reader.get_tensor(k) for k in sorted(reader.keys())}
            torch.save(state_dict, tmp)
            del state_dict
        _publish(tmp, path, overwrite)
    except BaseException as e:
        _remove_quietly(tmp)
        if isinstance(e, OSError):
            if e.errno == errno.ENOSPC:
                raise MergeError(f"Disk full while writing {path}; the partial file was removed.") from None
            raise MergeError(f"Could not write {path}: {e.strerror or e}.") from None
        raise


def merge_checkpoints(primary, secondary=None, tertiary=None, *, method="weighted_sum", multiplier=0.3,
                      save_as_half=False, output_path=None, output_dir=None, custom_name="",
                      checkpoint_format="safetensors", config_source=0, bake_in_vae=None, discard_weights="",
                      save_metadata=True, add_merge_recipe=True, copy_metadata_fields=True, metadata_json="{}",
                      overwrite=False, progress=None, should_stop=None) -> MergeResult:
    """Merge checkpoints (paths or titles) into a new file; raises MergeError with a user-facing message.

    output_path names the file exactly (its extension picks the format); otherwise the file goes to output_dir
    (default: the checkpoints folder) under custom_name or A1111's generated name, plus ".inpainting" /
    ".instruct-pix2pix" and "." + checkpoint_format. progress(fraction, text) is called as work proceeds;
    should_stop() returning True aborts the merge without leaving a file.
    """
    started = time.time()
    try:
        method = merge_methods.get_method(method)
    except ValueError as e:
        raise MergeError(str(e)) from None
    try:
        multiplier = float(multiplier)
    except (TypeError, ValueError):
        raise MergeError(f"Multiplier must be a number, got {multiplier!r}.") from None
    if not primary:
        raise MergeError("Failed: Merging requires a primary model.")
    if method.needs_b and not secondary:
        raise MergeError("Failed: Merging requires a secondary model.")
    if method.needs_c and not tertiary:
        raise MergeError(f"Failed: Interpolation method ({method.label}) requires a tertiary model.")

    report = progress or (lambda fraction, text: None)
    inputs = {"A": resolve_checkpoint(primary, "A")}
    if method.needs_b:
        inputs["B"] = resolve_checkpoint(secondary, "B")
    if method.needs_c:
        inputs["C"] = resolve_checkpoint(tertiary, "C")
    vae_file = resolve_vae(bake_in_vae)

    readers = {}
    vae = None
    try:
        for role, model in inputs.items():
            report(0.0, f"Reading {ROLES[role]}")
            readers[role] = _open(model, role)
        if vae_file:
            try:
                vae = CheckpointReader(vae_file)
            except CheckpointReadError as e:
                raise MergeError(f"Bake in VAE: cannot read {vae_file}: {e}.") from None
            if not vae_keys(vae):
                raise MergeError(f"Bake in VAE: {vae_file} holds no VAE weights.")
        plan = plan_merge(method, readers["A"], readers.get("B"), readers.get("C"), save_as_half=save_as_half,
                          vae=vae, vae_name=os.path.basename(vae_file or ""), discard_weights=discard_weights)

        path, fmt = _output_path(output_path, output_dir, custom_name, checkpoint_format, method, multiplier, inputs, plan)
        if os.path.exists(path) and not overwrite:
            raise MergeError(f"{path} already exists; choose another name or allow overwriting.")
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)

        metadata = None
        if save_metadata and fmt == "safetensors":
            recipe = {
                "type": "webui",
                "primary_model_hash": None, "secondary_model_hash": None, "tertiary_model_hash": None,
                "interp_method": method.label, "multiplier": multiplier, "save_as_half": bool(save_as_half),
                "custom_name": custom_name or "", "config_source": config_source,
                "bake_in_vae": bake_in_vae if bake_in_vae else "None", "discard_weights": discard_weights or "",
                "is_inpainting": plan.is_inpainting, "is_instruct_pix2pix": plan.is_instruct_pix2pix,
            }
            if add_merge_recipe:
                report(0.0, "Hashing input models")
                for role, field_name in (("A", "primary_model_hash"), ("B", "secondary_model_hash"), ("C", "tertiary_model_hash")):
                    if role in inputs:
                        recipe[field_name] = inputs[role].sha256()
            metadata = build_metadata(inputs, recipe, copy_metadata_fields=copy_metadata_fields,
                                      metadata_json=metadata_json, add_merge_recipe=add_merge_recipe, readers=readers)

        target = path if fmt == "safetensors" else path + ".safetensors.tmp"
        write_plan(plan, target, method=method, multiplier=multiplier, a=readers["A"], b=readers.get("B"),
                   c=readers.get("C"), vae=vae, metadata=metadata, overwrite=overwrite or fmt != "safetensors",
                   progress=lambda f, t: report(f * (0.95 if fmt == "ckpt" else 1.0), t), should_stop=should_stop)
        if fmt == "ckpt":
            try:
                report(0.95, "Saving .ckpt")
                _save_ckpt_from_safetensors(target, path, overwrite)
            finally:
                _remove_quietly(target)
    finally:
        for reader in readers.values():
            reader.close()
        if vae is not None:
            vae.close()

    copy_config(path, config_source, inputs)
    report(1.0, f"Checkpoint saved to {path}")
    return MergeResult(path, plan.is_inpainting, plan.is_instruct_pix2pix, time.time() - started, metadata or {})


def _output_path(output_path, output_dir, custom_name, checkpoint_format, method, multiplier, inputs, plan):
    if output_path:
        ext = os.path.splitext(output_path)[1].lower()
        if ext not in (".safetensors", ".ckpt"):
            raise MergeError(f"Output {output_path!r} must end in .safetensors or .ckpt.")
        return os.path.abspath(output_path), ext[1:]
    fmt = str(checkpoint_format or "safetensors").lower().lstrip(".")
    if fmt not in ("safetensors", "ckpt"):
        raise MergeError(f"Checkpoint format must be safetensors or ckpt, got {checkpoint_format!r}.")
    name = custom_name.strip() if custom_name and custom_name.strip() else output_basename(method, multiplier, inputs["A"], inputs.get("B"), inputs.get("C"))
    if plan.is_inpainting:
        name += ".inpainting"
    if plan.is_instruct_pix2pix:
        name += ".instruct-pix2pix"
    folder = os.path.realpath(output_dir or checkpoints_dir())
    path = os.path.abspath(os.path.join(folder, name + "." + fmt))
    # a subfolder of the checkpoints folder is fine; a name reaching outside it ("../x", "/x") is not
    if not os.path.realpath(path).startswith(folder + os.sep):
        raise MergeError(f"Custom name {custom_name!r} points outside the checkpoints folder {folder}; "
                         "give a file name (a subfolder inside it is fine).")
    return path, fmt


# ---------------------------------------------------------------------------------------------- command line

def _progress_printer(stream=sys.stderr):
    interactive = stream.isatty()
    last = {"pct": -1, "text": None}

    def report(fraction, text):
        pct = int(fraction * 100)
        if interactive:
            stream.write(f"\r{pct:3d}% {text[:100]:<100}")
            if fraction >= 1.0:
                stream.write("\n")
            stream.flush()
        elif pct >= last["pct"] + 10 or fraction >= 1.0 or not text.startswith("Merging"):
            if text != last["text"]:
                stream.write(f"{pct:3d}% {text}\n")
                stream.flush()
            last["pct"], last["text"] = pct, text
    return report


def build_parser():
    p = argparse.ArgumentParser(prog="python -m modules.merge", description="Merge Stable Diffusion checkpoints tensor by tensor (A1111's Checkpoint Merger).")
    p.add_argument("models", nargs="+", metavar="MODEL", help="A B [C]: checkpoint files or checkpoint titles")
    p.add_argument("--method", default="weighted_sum", choices=list(merge_methods.METHODS), help="interpolation method (default: weighted_sum)")
    p.add_argument("--multiplier", "-m", type=float, default=0.3, help="M, the weight of B, 0 to 1 (default: 0.3)")
    p.add_argument("--out", required=True, help="output file, .safetensors or .ckpt")
    p.add_argument("--fp16", action="store_true", help="save float32 weights as float16")
    p.add_argument("--bake-vae", default=None, metavar="VAE", help="replace the VAE with this VAE file or name")
    p.add_argument("--discard", default="", metavar="REGEX", help="drop weights whose name matches this regular expression")
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    p.add_argument("--no-metadata", action="store_true", help="write no metadata at all")
    p.add_argument("--no-recipe", action="store_true", help="do not record the merge recipe and input hashes")
    p.add_argument("--no-copy-metadata", action="store_true", help="do not copy the inputs' metadata")
    p.add_argument("--ckpt-dir", default=None, help="folder of checkpoints to resolve titles in (as the web UI's flag)")
    p.add_argument("--data-dir", default=None, help="the web UI's data folder, to resolve titles and hashes")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if len(args.models) > 3:
        print("error: at most three models (A B C) can be merged", file=sys.stderr)
        return 2
    # The web UI's flag parser reads sys.argv when modules.shared is first imported: hand it only its own flags.
    passthrough = []
    for flag, value in (("--ckpt-dir", args.ckpt_dir), ("--data-dir", args.data_dir)):
        if value:
            passthrough += [flag, value]
    sys.argv = [sys.argv[0]] + passthrough
    models = args.models + [None] * (3 - len(args.models))
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the output path, for scripts
            result = merge_checkpoints(models[0], models[1], models[2], method=args.method, multiplier=args.multiplier,
                                       save_as_half=args.fp16, output_path=args.out, bake_in_vae=args.bake_vae,
                                       discard_weights=args.discard, save_metadata=not args.no_metadata,
                                       add_merge_recipe=not args.no_recipe, copy_metadata_fields=not args.no_copy_metadata,
                                       overwrite=args.overwrite, progress=_progress_printer())
    except MergeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was saved", file=sys.stderr)
        return 130
    print(f"Checkpoint saved to {result.filename} ({result.seconds:.1f} s)", file=sys.stderr)
    print(result.filename)
    return 0


if __name__ == "__main__":
    sys.exit(main())
