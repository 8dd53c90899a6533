"""Executing extension files as modules: scripts/*.py and preload.py (A1111: modules.script_loading)."""
import importlib.util
import os
import sys
from collections import namedtuple

from modules import errors

# A file in a scripts/ (or javascript/, localizations/) folder: basedir is the extension (or repo) root.
ScriptFile = namedtuple("ScriptFile", ["basedir", "filename", "path"])

loaded_scripts = {}


def load_module(path):
    """Execute the file at `path` as a fresh module named after its file name (as A1111 does) and return it."""
    module_spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    loaded_scripts[path] = module
    return module


def preload_extensions(extensions_dir, parser, extension_list=None):
    """Call `preload(parser)` of each extension's preload.py so extensions can add command-line flags."""
    if not os.path.isdir(extensions_dir):
        return
    names = extension_list if extension_list is not None else sorted(os.listdir(extensions_dir))
    for dirname in names:
        preload_script = os.path.join(extensions_dir, dirname, "preload.py")
        if not os.path.isfile(preload_script):
            continue
        try:
            module = load_module(preload_script)
            if hasattr(module, "preload"):
                module.preload(parser)
        except Exception:
            errors.report(f"Error running preload() for {preload_script}", exc_info=True)


def _syspath_prefix(path):
    """Context in which `path` is first on sys.path, so `from scripts.x import y` and sibling packages resolve."""
    class _Prefix:
        def __enter__(self):
            self.saved = list(sys.path)
            sys.path.insert(0, path)

        def __exit__(self, *exc):
            # Keep entries the module itself appended (some extensions add their folder on purpose).
            added = [p for p in sys.path if p not in self.saved and p != path]
            sys.path[:] = self.saved + added
            return False
    return _Prefix()


syspath_prefix = _syspath_prefix
