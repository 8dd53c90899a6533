"""Heavy packages that extensions import at the top of a script but use only on some paths, imported lazily.

Cutoff does `import open_clip` at load time, yet uses it only for SDXL; importing it pulls torchvision, timm and
torch._dynamo (seconds of startup). Before extension scripts load, each package named here that is installed and
not imported yet is registered as a stand-in module: `import open_clip` succeeds at once, and the real package is
imported on the first access to one of its names, replacing the stand-in everywhere from then on.

(The standard library's LazyLoader is not enough: the import statement itself reads `__spec__` of a module found in
sys.modules, which makes LazyLoader load it at once.)
"""
import importlib
import importlib.util
import sys
import types

# open_clip: Cutoff. rembg: the Rembg extension imports it at load time and uses it only to remove a background;
# importing it imports pymatting, whose numba kernels compile on a machine's first import (minutes on 2 cores).
LAZY_PACKAGES = ("open_clip", "rembg")


class LazyPackage(types.ModuleType):
    """Holds the import machinery's attributes (__spec__, __file__, __path__); any other name loads the package."""

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # introspection of sys.modules must not trigger the import
        real = self._load()
        return getattr(real, attr)

    def _load(self):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)  # later accesses through this object are plain attribute reads
        return real


def install(names=LAZY_PACKAGES):
    for name in names:
        if name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        module = LazyPackage(name)
        module.__spec__ = spec
        module.__file__ = spec.origin
        module.__loader__ = spec.loader
        module.__package__ = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
        if spec.submodule_search_locations is not None:
            module.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = module
