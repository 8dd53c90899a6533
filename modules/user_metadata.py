"""The user's own notes on a model file: `NAME.json` beside `NAME.safetensors` (A1111's extra-network user metadata).

Keys A1111 writes and reads: "description", "activation text", "preferred weight", "negative text", "sd version",
"notes". Other keys that extensions put in the file (Civitai helpers add theirs) are kept on every write. The file is
written atomically: a crash leaves the old file or the new one, never half of either.
"""
import json
import math
import os

from modules import errors

DESCRIPTION = "description"
ACTIVATION_TEXT = "activation text"
PREFERRED_WEIGHT = "preferred weight"
NEGATIVE_TEXT = "negative text"
SD_VERSION = "sd version"
NOTES = "notes"
FIELDS = (DESCRIPTION, ACTIVATION_TEXT, PREFERRED_WEIGHT, NEGATIVE_TEXT, SD_VERSION, NOTES)
SD_VERSIONS = ("Unknown", "SD1", "SD2", "SDXL")


def metadata_path(filename: str) -> str:
    """NAME.json for NAME.<any extension>."""
    return os.path.splitext(filename)[0] + ".json"


def read(filename) -> dict:
    """The user metadata of a model file ({} when it has none). A damaged NAME.json is reported by name and read
    as empty; the file itself is left as it is."""
    if not filename:
        return {}
    path = metadata_path(filename)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, "r", encoding="utf8") as file:
            data = json.load(file)
    except (OSError, ValueError) as e:
        errors.display(e, f"reading user metadata from {path}")
        return {}
    if not isinstance(data, dict):
        errors.display(ValueError(f"{path}: expected a JSON object, got {type(data).__name__}"), "reading user metadata")
        return {}
    return data


def clean_weight(value):
    """A preferred weight as a float; 0 means "the default multiplier" (A1111). Raises ValueError naming the value."""
    if value is None or value == "":
        return 0.0
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"preferred weight: {value!r} is not a number") from None
    if not math.isfinite(weight):
        raise ValueError(f"preferred weight: {value!r} is not a finite number")
    return weight


def write(filename: str, updates: dict) -> dict:
    """Merge `updates` into the file's user metadata and write NAME.json atomically; returns what was written."""
    if not filename or not os.path.exists(filename):
        raise FileNotFoundError(f"user metadata: the model file {filename!r} does not exist")
    data = read(filename)
    for key, value in updates.items():
        if key == PREFERRED_WEIGHT:
            value = clean_weight(value)
        elif key == SD_VERSION and value not in SD_VERSIONS:
            raise ValueError(f"sd version: {value!r} is not one of {', '.join(SD_VERSIONS)}")
        elif isinstance(value, str):
            value = value.strip()
        data[key] = value
    path = metadata_path(filename)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf8") as file:
            json.dump(data, file, indent=4, ensure_ascii=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return data
