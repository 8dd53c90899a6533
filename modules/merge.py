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
import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field

import torch

from modules import merge_methods, safetensors_stream
from modules.checkpoint_reader import CheckpointReader, CheckpointReadError
from modules.merge_plan import MergeError, plan_merge, vae_keys

ROLES = {"A": "primary model (A)", "B": "secondary model (B)", "C": "tertiary model (C)"}


class MergeInterrupted(MergeError):
    pass


@dataclass
class InputModel:
    """One input checkpoint: its file and the names A1111 records for it."""
    filename: str
    name: str            # path relative to the checkpoints folder, with extension (A1111 CheckpointInfo.name)
    model_name: str      # name without extension, slashes replaced (used in generated output names)
    info: object = None  # modules.sd_models.CheckpointInfo when the model engine knows the file
    _sha256: str = None

    def sha256(self):
        if self._sha256 is None:
            self._sha256 = _file_sha256(self.filename, "checkpoint/" + self.name)
        return self._sha256

    def legacy_hash(self):
        """A1111's old 8-hex model hash: sha256 of 64 KiB at offset 1 MiB."""
        with open(self.filename, "rb") as f:
            f.seek(0x100000)
            return hashlib.sha256(f.read(0x10000)).hexdigest()[0:8]


@dataclass
class MergeResult:
    filename: str
    is_inpainting: bool = False
    is_instruct_pix2pix: bool = False
    seconds: float = 0.0
    metadata: dict = field(default_factory=dict)


def _file_sha256(filename, title):
    try:
        from modules import hashes
        value = hashes.sha256(filename, title)
        if value:
            return value
    except Exception:  # noqa: BLE001 - the hash cache module may be absent; hash directly
        pass
    h = hashlib.sha256()
    with open(filename, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoints_dir():
    """Where A1111 saves merged checkpoints: --ckpt-dir, else models/Stable-diffusion."""
    from modules import shared, paths_internal
    return getattr(shared.cmd_opts, "ckpt_dir", None) or os.path.join(paths_internal.models_path, "Stable-diffusion")


def _name_for(filename):
    """A1111 CheckpointInfo.name for a file the model engine does not know: relative to a checkpoints folder."""
    abspath = os.path.abspath(filename)
    try:
        roots = [checkpoints_dir()]
    except Exception:  # noqa: BLE001 - flags unavailable (e.g. odd argv): the file name alone will do
        roots = []
    for root in roots:
        root = os.path.abspath(root)
        if abspath.startswith(root + os.sep):
            return abspath[len(root):].lstrip("\\/")
    return os.path.basename(filename)


def _model_name(name):
    return os.path.splitext(name.replace("/", "_").replace("\\", "_"))[0]


def resolve_checkpoint(value, role="A") -> InputModel:
    """A checkpoint given as a file path or as a title/name known to modules.sd_models."""
    if value is None or str(value).strip() == "":
        raise MergeError(f"No {ROLES.get(role, role)} given.")
    value = str(value)
    if os.path.isfile(value):
        info = _known_checkpoint_for_file(value)
        name = info.name if info is not None else _name_for(value)
        return InputModel(os.path.abspath(value), name, _model_name(name), info)
    info = _lookup_title(value)
    if info is None:
        what = ROLES.get(role, role)
        raise MergeError(f"{what[:1].upper() + what[1:]}: checkpoint {value!r} not found (neither a file nor a known checkpoint title).")
    return InputModel(info.filename, info.name, getattr(info, "model_name", None) or _model_name(info.name), info)


def _sd_models():
    try:
        from modules import sd_models
        return sd_models
    except Exception:  # noqa: BLE001 - the model engine may not be importable (yet)
        return None


def _lookup_title(title):
    sd_models = _sd_models()
    if sd_models is None:
        return None
    if not getattr(sd_models, "checkpoints_list", None) and hasattr(sd_models, "list_models"):
        try:
            sd_models.list_models()
        except Exception:  # noqa: BLE001
            return None
    info = sd_models.checkpoints_list.get(title)
    if info is None and hasattr(sd_models, "get_closet_checkpoint_match"):
        info = sd_models.get_closet_checkpoint_match(title)
    return info


def _known_checkpoint_for_file(filename):
    if "modules.sd_models" not in sys.modules:
        return None  # a plain path: no need to start the model engine
    sd_models = sys.modules["modules.sd_models"]
    target = os.path.abspath(filename)
    for info in list(getattr(sd_models, "checkpoints_list", {}).values()):
        if os.path.abspath(getattr(info, "filename", "")) == target:
            return info
    return None


def _open(model: InputModel, role):
    try:
        return CheckpointReader(model.filename)
    except CheckpointReadError as e:
        raise MergeError(f"Cannot read {ROLES.get(role, role)} {model.filename}: {e}.") from None


def resolve_vae(value):
    """A VAE given as a file path or a name from modules.sd_vae.vae_dict / the models/VAE folder; None for none."""
    if value in (None, "", "None"):
        return None
    value = str(value)
    if os.path.isfile(value):
        return value
    try:
        from modules import sd_vae
        if value in getattr(sd_vae, "vae_dict", {}):
            return sd_vae.vae_dict[value]
    except Exception:  # noqa: BLE001 - the VAE module may be absent; look in the folder ourselves
        pass
    for filename in list_vae_files():
        if os.path.basename(filename) == value or os.path.splitext(os.path.basename(filename))[0] == value:
            return filename
    raise MergeError(f"Bake in VAE: {value!r} not found (neither a file nor a VAE in the VAE folder).")


def list_vae_files():
    from modules import shared, paths_internal
    roots = [getattr(shared.cmd_opts, "vae_dir", None), os.path.join(paths_internal.models_path, "VAE")]
    found = []
    for root in roots:
        if root and os.path.isdir(root):
            for filename in shared.walk_files(root, allowed_extensions=[".safetensors", ".pt", ".ckpt"]):
                found.append(filename)
    return found


def output_basename(method, multiplier, a: InputModel, b: InputModel = None, c: InputModel = None):
    """A1111's generated file name (without extension) for a merge."""
    m = float(multiplier)
    if method.id == "weighted_sum":
        return f"{round(1 - m, 2)}({a.model_name}) + {round(m, 2)}({b.model_name})"
    if method.id in ("sigmoid", "inverse_sigmoid"):
        return f"{round(1 - m, 2)}({a.model_name}) + {round(m, 2)}({b.model_name}) {method.id.replace('_', ' ')}"
    if method.id == "add_difference":
        return f"{a.model_name} + {round(m, 2)}({b.model_name} - {c.model_name})"
    return a.model_name


def build_metadata(inputs, recipe, *, copy_metadata_fields=True, metadata_json="{}", add_merge_recipe=True, readers=None):
    """The output's __metadata__ as A1111 writes it (values are strings; sd_merge_* are JSON strings)."""
    metadata = {}
    readers = readers or {}
    if copy_metadata_fields:
        for role in ("A", "B", "C"):
            if role in readers:
                metadata.update(readers[role].metadata)
    if metadata_json and str(metadata_json).strip():
        try:
            extra = json.loads(metadata_json)
        except json.JSONDecodeError as e:
            raise MergeError(f"Metadata: the JSON text is not valid ({e}).") from None
        if not isinstance(extra, dict):
            raise MergeError("Metadata: the JSON text must be an object, like {\"key\": \"value\"}.")
        metadata.update(extra)
    metadata["format"] = "pt"
    if add_merge_recipe:
        sd_merge_models = {}
        for role in ("A", "B", "C"):
            model = inputs.get(role)
            if model is None:
                continue
            source_meta = readers[role].metadata if role in readers else {}
            sd_merge_models[model.sha256()] = {
                "name": model.name,
                "legacy_hash": model.legacy_hash(),
                "sd_merge_recipe": _json_or_none(source_meta.get("sd_merge_recipe")),
            }
            sd_merge_models.update(_json_or_none(source_meta.get("sd_merge_models")) or {})
        metadata["sd_merge_recipe"] = json.dumps(recipe)
        metadata["sd_merge_models"] = json.dumps(sd_merge_models)
    # copied fields may hold JSON objects; safetensors stores strings only
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def _json_or_none(value):
    if value is None or isinstance(value, dict):
        return value
    try:
        return json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return None


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


def copy_config(output_path, config_source, inputs):
    """A1111 create_config: a .yaml beside A, B or C copied beside the output (0: first found, 1: B, 2: C, 3: none)."""
    roles = {0: ["A", "B", "C"], 1: ["B"], 2: ["C"]}.get(int(config_source or 0), [])
    for role in roles:
        model = inputs.get(role)
        if model is None:
            continue
        yaml = os.path.splitext(model.filename)[0] + ".yaml"
        if os.path.isfile(yaml):
            target = os.path.splitext(output_path)[0] + ".yaml"
            shutil.copyfile(yaml, target)
            return target
    return None


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
    return os.path.abspath(os.path.join(output_dir or checkpoints_dir(), name + "." + fmt)), fmt


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
