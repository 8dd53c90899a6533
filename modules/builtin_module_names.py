"""Bare module names of A1111's built-in extensions that extensions import (`import networks`, `from network import
NetworkOnDisk`, `import lora`, `import ui_extra_networks_lora`), answered with the engine module that plays that
part: the very module object, imported on first use, so an extension that reads or replaces `networks.x` reads or
replaces the engine's own.
"""
import importlib
import importlib.abc
import importlib.util
import sys

# bare name -> the engine module behind it
TARGETS = {name: f"modules.lora.{name}" for name in (
    "network", "lyco_helpers", "network_lora", "network_hada", "network_lokr", "network_ia3", "network_oft",
    "network_glora", "network_full", "network_norm", "lora_patches", "networks", "lora", "extra_networks_lora",
)}
TARGETS["ui_extra_networks_lora"] = "modules.ui_extra_networks_lora"  # the Lora card page


def register(name, target):
    """Let `import name` give the module `target` (a dotted module path, imported when first asked for)."""
    TARGETS[name] = target


class _EngineModuleLoader(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass


class _BuiltinNameFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if path is not None or fullname not in TARGETS:
            return None
        return importlib.util.spec_from_loader(fullname, _EngineModuleLoader(TARGETS[fullname]))


_finder = _BuiltinNameFinder()


def install():
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
