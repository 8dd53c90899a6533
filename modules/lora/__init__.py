"""LoRA, LyCORIS and their kin: A1111's built-in Lora extension, as engine code.

A1111 ships this as extensions-builtin/Lora, whose modules extensions import by bare name (`import networks`,
`from network import NetworkOnDisk`, `import lora`): modules.builtin_module_names answers those imports with the
modules here, and importing this package registers them at once, so an extension that reads
`networks.loaded_networks` or replaces `networks.network_apply_weights` touches the engine's own state and functions.
"""
import importlib
import sys

from modules import builtin_module_names

for _name, _target in builtin_module_names.TARGETS.items():
    if _target.startswith(__name__ + "."):
        sys.modules[_name] = importlib.import_module(_target)
