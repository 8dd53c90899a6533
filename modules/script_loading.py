"""Executing extension files as modules: scripts/*.py and preload.py (A1111: modules.script_loading)."""
import importlib.abc
import importlib.util
import os
import re
import sys
from collections import namedtuple

from modules import errors

# A file in a scripts/ (or javascript/, localizations/) folder: basedir is the extension (or repo) root.
ScriptFile = namedtuple("ScriptFile", ["basedir", "filename", "path"])

loaded_scripts = {}

# Script files are executed as modules named after their file ("xyz_grid.py", as in A1111: extensions find each
# other by `script_class.__module__ == "xyz_grid.py"`), and registered in sys.modules under that name, so that
# classes defined in them work with inspect.getfile (Gradio 6 calls it on component subclasses), pickle and
# dataclasses. A second file with a name already taken gets "<stem>__<its folder's name>.py".
module_names = {}  # path -> its name in sys.modules


def _module_name(path):
    name = module_names.get(path)
    if name is not None:
        return name
    name = os.path.basename(path)
    taken = set(module_names.values())
    if name in taken or (name in sys.modules and getattr(sys.modules[name], "__file__", None) != path):
        folder = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
        name = f"{os.path.splitext(name)[0]}__{re.sub(r'[^0-9A-Za-z_]', '_', folder)}.py"
    module_names[path] = name
    return name


def _front(name):
    """What `__import__(name)` imports first: pickle imports "xyz_grid" on its way to "xyz_grid.py"."""
    return name.partition(".")[0]


class _ScriptModuleFinder(importlib.abc.MetaPathFinder):
    """Last on sys.meta_path: `import xyz_grid` gives the registered "xyz_grid.py" when nothing else provides it."""

    def find_spec(self, fullname, path=None, target=None):
        if path is not None:
            return None
        for name in module_names.values():
            if _front(name) == fullname and name in sys.modules:
                return importlib.util.spec_from_loader(fullname, _AliasLoader(sys.modules[name]))
        return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        pass


_finder = _ScriptModuleFinder()


def load_module(path):
    """Execute the file at `path` as a module named after its file (as A1111 does), registered in sys.modules."""
    if _finder not in sys.meta_path:
        sys.meta_path.append(_finder)
    name = _module_name(path)
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        unregister(path)
        raise
    loaded_scripts[path] = module
    return module


def unregister(path):
    """Forget the module loaded from `path` (Reload UI executes the file afresh)."""
    name = module_names.pop(path, None)
    loaded_scripts.pop(path, None)
    if name is None:
        return
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None) == path:
        del sys.modules[name]
        if sys.modules.get(_front(name)) is module:
            del sys.modules[_front(name)]


def unregister_all():
    for path in list(module_names):
        unregister(path)


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
