"""Extra-network tags in prompts (`<lora:name:0.8>`): parsed out of the text and handed to registered networks.

A1111's registry: extensions register an `ExtraNetwork` by name; `activate` calls each with the parameters of
its tags for the batch. Tags of networks nobody registered are removed from the prompt and reported once.
"""
import re
from collections import defaultdict

from modules import errors

extra_network_registry = {}
extra_network_aliases = {}

re_extra_net = re.compile(r"<(\w+):([^>]+)>")


def initialize():
    extra_network_registry.clear()
    extra_network_aliases.clear()


def register_extra_network(extra_network):
    extra_network_registry[extra_network.name] = extra_network


def register_extra_network_alias(extra_network, alias):
    extra_network_aliases[alias] = extra_network


def register_default_extra_networks():
    """The engine's own networks: `hypernet`, and `lora` (alias `lyco`) with its callbacks."""
    from modules import extra_networks_hypernet
    from modules.lora import extra_networks_lora, networks
    register_extra_network(extra_networks_hypernet.ExtraNetworkHypernet())
    extra_network_lora = extra_networks_lora.ExtraNetworkLora()
    networks.extra_network_lora = extra_network_lora
    register_extra_network(extra_network_lora)
    register_extra_network_alias(extra_network_lora, "lyco")
    networks.register_callbacks()


class ExtraNetworkParams:
    def __init__(self, items=None):
        self.items = items or []
        self.positional = []
        self.named = {}
        for item in self.items:
            parts = item.split("=", 2) if isinstance(item, str) else [item]
            if len(parts) == 2:
                self.named[parts[0]] = parts[1]
            else:
                self.positional.append(item)

    def __eq__(self, other):
        return self.items == other.items

    def __repr__(self):
        return f"ExtraNetworkParams({self.items!r})"


class ExtraNetwork:
    def __init__(self, name):
        self.name = name

    def activate(self, p, params_list):
        raise NotImplementedError

    def deactivate(self, p):
        raise NotImplementedError


def lookup_extra_networks(extra_network_data):
    res = {}
    for extra_network_name, extra_network_args in list(extra_network_data.items()):
        extra_network = extra_network_registry.get(extra_network_name, None)
        alias = extra_network_aliases.get(extra_network_name, None)
        if alias is not None and extra_network is None:
            extra_network = alias
        if extra_network is None:
            continue
        res.setdefault(extra_network, []).extend(extra_network_args)
    return res


def activate(p, extra_network_data):
    """Call every registered network with its tags' parameters (an empty list when its tags are absent)."""
    activated = []
    for name in extra_network_data or {}:
        if name not in extra_network_registry and name not in extra_network_aliases:
            print(f"Skipping unknown extra network: {name}")
    for extra_network, extra_network_args in lookup_extra_networks(extra_network_data or {}).items():
        try:
            extra_network.activate(p, extra_network_args)
            activated.append(extra_network)
        except Exception as e:
            errors.display(e, f"activating extra network {extra_network.name} with arguments {extra_network_args}")
    for extra_network_name, extra_network in extra_network_registry.items():
        if extra_network in activated:
            continue
        try:
            extra_network.activate(p, [])
        except Exception as e:
            errors.display(e, f"activating extra network {extra_network_name}")


def deactivate(p, extra_network_data):
    data = lookup_extra_networks(extra_network_data or {})
    for extra_network in data:
        try:
            extra_network.deactivate(p)
        except Exception as e:
            errors.display(e, f"deactivating extra network {extra_network.name}")
    for extra_network_name, extra_network in extra_network_registry.items():
        if extra_network in data:
            continue
        try:
            extra_network.deactivate(p)
        except Exception as e:
            errors.display(e, f"deactivating unmentioned extra network {extra_network_name}")


def parse_prompt(prompt):
    """-> (prompt without tags, {network name: [ExtraNetworkParams, ...]})."""
    res = defaultdict(list)

    def found(m):
        name = m.group(1)
        args = m.group(2)
        res[name].append(ExtraNetworkParams(items=args.split(":")))
        return ""

    prompt = re.sub(re_extra_net, found, prompt or "")
    return prompt, res


def parse_prompts(prompts):
    res = []
    extra_data = None
    for prompt in prompts:
        updated_prompt, parsed_extra_data = parse_prompt(prompt)
        if extra_data is None:
            extra_data = parsed_extra_data
        res.append(updated_prompt)
    return res, extra_data if extra_data is not None else defaultdict(list)


def get_user_metadata(filename, lister=None):
    """The user's notes on a network file from NAME.json beside it (A1111's name; modules.user_metadata reads it)."""
    from modules import user_metadata
    return user_metadata.read(filename)
