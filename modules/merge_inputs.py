"""The merger's inputs and what it records about them: checkpoints found by path or title (modules.sd_models),
their names and hashes as A1111 records them, the VAE to bake in, the output's metadata and copied config."""
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass

from modules import hashes
from modules.merge_plan import MergeError

ROLES = {"A": "primary model (A)", "B": "secondary model (B)", "C": "tertiary model (C)"}


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


def _file_sha256(filename, title):
    # With --no-hashing the cache answers only for files hashed before; the merge records a hash all the same.
    return hashes.sha256(filename, title) or hashes.calculate_sha256(filename)


def checkpoints_dir():
    """Where A1111 saves merged checkpoints: --ckpt-dir, else models/Stable-diffusion."""
    from modules import shared, paths_internal
    return shared.cmd_opts.ckpt_dir or os.path.join(paths_internal.models_path, "Stable-diffusion")


def _name_for(filename):
    """A1111 CheckpointInfo.name for a file the model engine does not know: relative to a checkpoints folder."""
    abspath = os.path.abspath(filename)
    root = os.path.abspath(checkpoints_dir())
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
    return InputModel(info.filename, info.name, info.model_name, info)


def _lookup_title(title):
    from modules import sd_models  # here, not at the top: a merge of plain files needs no model engine
    if not sd_models.checkpoints_list:
        sd_models.list_models()
    return sd_models.checkpoints_list.get(title) or sd_models.get_closet_checkpoint_match(title)


def _known_checkpoint_for_file(filename):
    if "modules.sd_models" not in sys.modules:
        return None  # a plain path: no need to start the model engine
    sd_models = sys.modules["modules.sd_models"]
    target = os.path.abspath(filename)
    for info in list(sd_models.checkpoints_list.values()):
        if os.path.abspath(info.filename) == target:
            return info
    return None


def resolve_vae(value):
    """A VAE given as a file path or a name from modules.sd_vae.vae_dict / the models/VAE folder; None for none."""
    if value in (None, "", "None"):
        return None
    value = str(value)
    if os.path.isfile(value):
        return value
    from modules import sd_vae  # here, not at the top: it loads the model engine
    if value in sd_vae.vae_dict:
        return sd_vae.vae_dict[value]
    for filename in list_vae_files():
        if os.path.basename(filename) == value or os.path.splitext(os.path.basename(filename))[0] == value:
            return filename
    raise MergeError(f"Bake in VAE: {value!r} not found (neither a file nor a VAE in the VAE folder).")


def list_vae_files():
    from modules import shared, paths_internal
    roots = [shared.cmd_opts.vae_dir, os.path.join(paths_internal.models_path, "VAE")]
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
