"""LoRA, LyCORIS and their kin: A1111's built-in Lora extension, as engine code.

A1111 ships this as extensions-builtin/Lora, whose modules extensions import by bare name (`import networks`,
`from network import NetworkOnDisk`, `import lora`). Importing this package registers each of those names in
sys.modules as the module object itself, so an extension that reads `networks.loaded_networks` or replaces
`networks.network_apply_weights` touches the engine's own state and functions.
"""
import importlib
import sys

A1111_MODULE_NAMES = (
    "network", "lyco_helpers", "network_lora", "network_hada", "network_lokr", "network_ia3", "network_oft",
    "network_glora", "network_full", "network_norm", "lora_patches", "networks", "lora", "extra_networks_lora",
)


def install_module_alias(name, module):
    """Make `import name` give `module` itself (used for the A1111 names above, and by the card page for
    `ui_extra_networks_lora`)."""
    sys.modules[name] = module


for _name in A1111_MODULE_NAMES:
    install_module_alias(_name, importlib.import_module(f"{__name__}.{_name}"))
