"""Outputs are saved by the front, whatever worker made them.

On a worker, every `images.save_image` call of a job (samples, grids, masks, a script's own saves) is recorded
instead of written: the image, the arguments, and a copy of p's plain fields (what file names and infotexts are made
of). The front replays the records through the same `images.save_image` once the job has finished, so names are
numbered in the front's folders and a job that dies half-way and is run again elsewhere leaves no duplicates.
"""
import contextlib
import os
from dataclasses import dataclass, field
from types import SimpleNamespace

from modules import images, shared

_PLAIN = (str, int, float, bool, type(None))


def _plain(value, depth=0):
    """True for values that pickle anywhere and say nothing about this process: numbers, text, their lists."""
    if isinstance(value, _PLAIN):
        return True
    if depth < 3 and isinstance(value, (list, tuple)):
        return all(_plain(x, depth + 1) for x in value)
    if depth < 3 and isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def plain_fields(p):
    """p's plain fields (seeds, prompts, sampler, sizes, model name and hash, ...) as a namespace, or None."""
    if p is None:
        return None
    fields = {}
    for name in dir(p):
        if name.startswith("__"):
            continue
        try:
            value = getattr(p, name)
        except Exception:
            continue
        if not callable(value) and _plain(value):
            fields[name] = value
    return SimpleNamespace(**fields)


def data_subpath(path):
    """The part of a worker's output folder below its data folder (the front saves under its own), else None."""
    if not path or not os.path.isabs(path):
        return None
    absolute = os.path.realpath(path)
    if absolute == shared.data_path or absolute.startswith(shared.data_path + os.sep):
        return os.path.relpath(absolute, shared.data_path)
    return None


@dataclass
class SavedImage:
    """One `images.save_image` call of a worker, to be replayed by the front."""
    image: object
    path: str
    in_data_folder: bool = False
    kwargs: dict = field(default_factory=dict)
    p: SimpleNamespace = None


@contextlib.contextmanager
def capture():
    """While active, `images.save_image` records its calls into the yielded list instead of writing files."""
    records = []

    def record(image, path, basename, p=None, **kwargs):
        subpath = data_subpath(path)
        records.append(SavedImage(image=image, path=path if subpath is None else subpath, in_data_folder=subpath is not None,
                                  p=plain_fields(p), kwargs=dict(kwargs, basename=basename)))
        # The file's name is only known once the front saves it.
        return None, None

    previous = images.save_image_redirect
    images.save_image_redirect = record
    try:
        yield records
    finally:
        images.save_image_redirect = previous


def replay(records):
    """Save a worker's recorded images on the front, in the order the job made them; returns the file names."""
    saved = []
    for record in records:
        path = shared.data_relative(record.path) if record.in_data_folder else record.path
        fullfn, _ = images.save_image(record.image, path, p=record.p, **record.kwargs)
        saved.append(fullfn)
    return saved
