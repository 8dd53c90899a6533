"""Small file and path helpers (A1111: modules.util); `modules.shared` re-exports the older names it had."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from modules.paths_internal import cwd, script_path


def natural_sort_key(s, regex=re.compile("([0-9]+)")):
    """Sort key that orders "img2" before "img10"."""
    return [int(text) if text.isdigit() else text.lower() for text in regex.split(s)]


def listfiles(dirname):
    """The files (not folders, not hidden) directly in `dirname`, naturally sorted, as full paths."""
    filenames = [os.path.join(dirname, x) for x in sorted(os.listdir(dirname), key=natural_sort_key) if not x.startswith(".")]
    return [file for file in filenames if os.path.isfile(file)]


def html_path(filename):
    return os.path.join(script_path, "html", filename)


def html(filename):
    """The text of html/<filename> of the program, or "" when there is no such file."""
    try:
        with open(html_path(filename), encoding="utf8") as file:
            return file.read()
    except OSError:
        return ""


def walk_files(path, allowed_extensions=None):
    """Every file under `path` (sorted naturally), optionally only those with the given extensions; files in
    hidden folders only with the `list_hidden_files` setting."""
    from modules import shared
    if not os.path.exists(path):
        return
    if allowed_extensions is not None:
        allowed_extensions = set(allowed_extensions)
    items = sorted(os.walk(path, followlinks=True), key=lambda x: natural_sort_key(x[0]))
    for root, _, files in items:
        for filename in sorted(files, key=natural_sort_key):
            if allowed_extensions is not None and os.path.splitext(filename)[1].lower() not in allowed_extensions:
                continue
            if not shared.opts.list_hidden_files and ("/." in root or "\\." in root):
                continue
            yield os.path.join(root, filename)


def ldm_print(*args, **kwargs):
    """print(), unless the `hide_ldm_prints` setting silences the model code's console chatter."""
    from modules import shared
    if shared.opts.hide_ldm_prints:
        return
    print(*args, **kwargs)


def truncate_path(target_path, base_path=cwd):
    """`target_path` relative to `base_path` when it lies inside it, else absolute."""
    abs_target, abs_base = os.path.abspath(target_path), os.path.abspath(base_path)
    try:
        if os.path.commonpath([abs_target, abs_base]) == abs_base:
            return os.path.relpath(abs_target, abs_base)
    except ValueError:
        pass
    return abs_target


class MassFileListerCachedDir:
    """One folder's file names with their mtime/ctime, read with a single scandir."""

    def __init__(self, dirname):
        self.dirname = dirname
        stats = ((x.name, x.stat(follow_symlinks=False)) for x in os.scandir(dirname))
        files = [(name, stat.st_mtime, stat.st_ctime) for name, stat in stats]
        self.files = {x[0].lower(): x for x in files}
        self.files_cased = {x[0]: x for x in files}

    def update_entry(self, filename):
        path = os.path.join(self.dirname, filename)
        try:
            stat = os.stat(path)
        except FileNotFoundError as e:
            print(f'MassFileListerCachedDir.update_entry: "{path}" {e}', file=sys.stderr)
            return
        entry = (filename, stat.st_mtime, stat.st_ctime)
        self.files[filename.lower()] = entry
        self.files_cased[filename] = entry


class MassFileLister:
    """Answers "does this file exist, and when was it changed" for many files with one directory read per folder
    (extra-network cards ask it for every preview and description file)."""

    def __init__(self):
        self.cached_dirs = {}

    def find(self, path):
        """(name, mtime, ctime) of the file at `path`, or None (another case of the name is checked on disk)."""
        dirname, filename = os.path.split(path)
        cached_dir = self.cached_dirs.get(dirname)
        if cached_dir is None:
            try:
                cached_dir = MassFileListerCachedDir(dirname)
            except OSError:
                return None
            self.cached_dirs[dirname] = cached_dir
        stats = cached_dir.files_cased.get(filename)
        if stats is not None:
            return stats
        if cached_dir.files.get(filename.lower()) is None:
            return None
        try:
            os_stats = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        return filename, os_stats.st_mtime, os_stats.st_ctime

    def exists(self, path):
        return self.find(path) is not None

    def mctime(self, path):
        """(mtime, ctime) of the file, (0, 0) when it does not exist."""
        stats = self.find(path)
        return (0, 0) if stats is None else stats[1:3]

    def reset(self):
        self.cached_dirs.clear()

    def update_file_entry(self, path):
        dirname, filename = os.path.split(path)
        cached_dir = self.cached_dirs.get(dirname)
        if cached_dir is not None:
            cached_dir.update_entry(filename)


def topological_sort(dependencies):
    """Names ordered so each comes after what it depends on; insertion order otherwise; cycles and unknowns ignored."""
    visited = set()
    result = []

    def visit(node, stack):
        if node in visited or node in stack:
            return
        stack.add(node)
        for dep in dependencies.get(node, []):
            if dep in dependencies:
                visit(dep, stack)
        stack.discard(node)
        visited.add(node)
        result.append(node)

    for node in dependencies:
        visit(node, set())
    return result


def open_folder(path):
    """Open `path` in the desktop's file manager; a missing path or a file is refused with a message."""
    if not os.path.exists(path):
        print(f'Folder "{path}" does not exist. After you save an image, the folder will be created.')
        return
    if not os.path.isdir(path):
        print(f"An open_folder request was made with a path that is not a folder, refused: {path}", file=sys.stderr)
        return
    path = os.path.normpath(path)
    if sys.platform == "win32":
        os.startfile(path)  # noqa: S606 (a folder the user asked to see)
    elif sys.platform == "darwin":
        subprocess.Popen(["open", path])
    else:
        subprocess.Popen(["xdg-open", path])


def load_file_from_url(url: str, *, model_dir: str, progress: bool = True, file_name: str | None = None,
                       hash_prefix: str | None = None, re_download: bool = False) -> str:
    """The model file `url` names, from `model_dir` (this program never downloads; see modelloader)."""
    from modules import modelloader
    return modelloader.load_file_from_url(url, model_dir=model_dir, progress=progress, file_name=file_name,
                                          hash_prefix=hash_prefix)


def compare_sha256(file_path: str, hash_prefix: str) -> bool:
    """Whether the file's sha256 starts with `hash_prefix`."""
    from modules import hashes
    return hashes.calculate_sha256(file_path).startswith(hash_prefix.strip().lower())
