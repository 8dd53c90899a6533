"""A1111's older names for the networks state (the Lora extension's `lora` module, read by extensions such as
composable-lora): the very same dicts and list as `networks`, not copies."""
from modules.lora import networks

list_available_loras = networks.list_available_networks
available_loras = networks.available_networks
available_lora_aliases = networks.available_network_aliases
available_lora_hash_lookup = networks.available_network_hash_lookup
forbidden_lora_aliases = networks.forbidden_network_aliases
loaded_loras = networks.loaded_networks
