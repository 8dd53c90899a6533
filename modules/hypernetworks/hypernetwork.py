"""Hypernetworks: A1111's `.pt` files in models/hypernetworks, applied with `<hypernet:NAME:MULTIPLIER>`
(A1111: modules.hypernetworks.hypernetwork).

A hypernetwork holds, for each context width it was trained for (768, 320, 640, 1280, 1024), a pair of small MLPs;
in every cross- and self-attention layer whose context has that width, the keys see `context + mlp_k(context) ×
multiplier` and the values `context + mlp_v(context) × multiplier`. Here that is a forward pre-hook on the
attention layers' `to_k`/`to_v`, installed only while some hypernetwork is loaded, so a model without one runs
exactly as before.
"""
import glob
import inspect
import os
import weakref

import torch

from modules import devices, errors, safe, shared


class HypernetworkModule(torch.nn.Module):
    activation_dict = {
        "linear": torch.nn.Identity,
        "relu": torch.nn.ReLU,
        "leakyrelu": torch.nn.LeakyReLU,
        "elu": torch.nn.ELU,
        "swish": torch.nn.Hardswish,
        "tanh": torch.nn.Tanh,
        "sigmoid": torch.nn.Sigmoid,
    }
    activation_dict.update({cls_name.lower(): cls_obj for cls_name, cls_obj in inspect.getmembers(torch.nn.modules.activation)
                            if inspect.isclass(cls_obj) and cls_obj.__module__ == "torch.nn.modules.activation"})

    def __init__(self, dim, state_dict=None, layer_structure=None, activation_func=None, weight_init="Normal",
                 add_layer_norm=False, activate_output=False, dropout_structure=None):
        super().__init__()
        self.multiplier = 1.0
        if not layer_structure or layer_structure[0] != 1 or layer_structure[-1] != 1:
            raise ValueError(f"hypernetwork layer structure must start and end with 1, got {layer_structure}")

        # The Sequential's indices are part of the file's keys: Linear, [activation], [LayerNorm], [Dropout] per step
        layers = []
        for i in range(len(layer_structure) - 1):
            layers.append(torch.nn.Linear(int(dim * layer_structure[i]), int(dim * layer_structure[i + 1])))
            last = i >= len(layer_structure) - 2
            if activation_func in ("linear", None) or (last and not activate_output):
                pass
            elif activation_func in self.activation_dict:
                layers.append(self.activation_dict[activation_func]())
            else:
                raise ValueError(f"hypernetwork uses an unsupported activation function: {activation_func}")
            if add_layer_norm:
                layers.append(torch.nn.LayerNorm(int(dim * layer_structure[i + 1])))
            if dropout_structure is not None and dropout_structure[i + 1] > 0:
                layers.append(torch.nn.Dropout(p=dropout_structure[i + 1]))
        self.linear = torch.nn.Sequential(*layers)

        if state_dict is not None:
            self.fix_old_state_dict(state_dict)
            self.load_state_dict(state_dict)
        self.to(devices.device)

    def fix_old_state_dict(self, state_dict):
        """The first hypernetworks (NovelAI's) named their two layers linear1/linear2."""
        changes = {"linear1.bias": "linear.0.bias", "linear1.weight": "linear.0.weight",
                   "linear2.bias": "linear.1.bias", "linear2.weight": "linear.1.weight"}
        for old, new in changes.items():
            if old in state_dict:
                state_dict[new] = state_dict.pop(old)

    def forward(self, x):
        return x + self.linear(x) * (self.multiplier if not self.training else 1)


def parse_dropout_structure(layer_structure, use_dropout, last_layer_dropout):
    """Dropout after each layer, for files that only say use_dropout (0.3 between hidden layers)."""
    if layer_structure is None:
        layer_structure = [1, 2, 1]
    if not use_dropout:
        return [0] * len(layer_structure)
    return [0] + [0.3] * (len(layer_structure) - 3) + [0.3 if last_layer_dropout else 0] + [0]


class Hypernetwork:
    filename = None
    name = None

    def __init__(self, name=None):
        self.filename = None
        self.name = name
        self.layers = {}      # context width -> (module for keys, module for values)
        self.step = 0
        self.sd_checkpoint = None
        self.sd_checkpoint_name = None
        self.layer_structure = None
        self.activation_func = None
        self.weight_init = None
        self.add_layer_norm = False
        self.use_dropout = False
        self.activate_output = False
        self.last_layer_dropout = False
        self.dropout_structure = None
        self.optional_info = None

    def weights(self):
        return [p for pair in self.layers.values() for module in pair for p in module.parameters()]

    def eval(self):
        for pair in self.layers.values():
            for module in pair:
                module.eval()
                module.requires_grad_(False)

    def set_multiplier(self, multiplier):
        for pair in self.layers.values():
            for module in pair:
                module.multiplier = multiplier
        return self

    def load(self, filename):
        """Read an A1111 hypernetwork .pt through the restricted unpickler (nothing in it is executed)."""
        self.filename = filename
        if self.name is None:
            self.name = os.path.splitext(os.path.basename(filename))[0]
        state_dict = safe.load(filename, map_location="cpu")
        if not isinstance(state_dict, dict) or not any(isinstance(k, int) for k in state_dict):
            raise ValueError(f"{filename}: not a hypernetwork (no per-width layers in it)")

        self.layer_structure = state_dict.get("layer_structure", [1, 2, 1])
        self.optional_info = state_dict.get("optional_info", None)
        self.activation_func = state_dict.get("activation_func", None)
        self.weight_init = state_dict.get("weight_initialization", "Normal")
        self.add_layer_norm = state_dict.get("is_layer_norm", False)
        self.dropout_structure = state_dict.get("dropout_structure", None)
        self.use_dropout = bool(self.dropout_structure is not None and any(self.dropout_structure)) or state_dict.get("use_dropout", False)
        self.activate_output = state_dict.get("activate_output", True)
        self.last_layer_dropout = state_dict.get("last_layer_dropout", False)
        if self.dropout_structure is None:
            self.dropout_structure = parse_dropout_structure(self.layer_structure, self.use_dropout, self.last_layer_dropout)

        for size, pair in state_dict.items():
            if isinstance(size, int):
                self.layers[size] = tuple(
                    HypernetworkModule(size, dict(sd), self.layer_structure, self.activation_func, self.weight_init,
                                       self.add_layer_norm, self.activate_output, self.dropout_structure)
                    for sd in pair[:2])
        self.name = state_dict.get("name", self.name)
        self.step = state_dict.get("step", 0)
        self.sd_checkpoint = state_dict.get("sd_checkpoint", None)
        self.sd_checkpoint_name = state_dict.get("sd_checkpoint_name", None)
        self.eval()


def list_hypernetworks(path):
    """{name: path} of every .pt under `path` (a file called None.pt is skipped: "None" means no hypernetwork)."""
    res = {}
    for filename in sorted(glob.iglob(os.path.join(path, "**/*.pt"), recursive=True), key=str.lower):
        name = os.path.splitext(os.path.basename(filename))[0]
        if name != "None":
            res[name] = filename
    return res


def load_hypernetwork(name):
    """The hypernetwork file `name`, or None (a missing name; an unreadable file is reported)."""
    path = shared.hypernetworks.get(name, None)
    if path is None:
        return None
    hypernetwork = Hypernetwork()
    hypernetwork.load(path)
    return hypernetwork


def find_closest_hypernetwork_name(search: str):
    if not search:
        return None
    search = search.lower()
    applicable = sorted((name for name in shared.hypernetworks if search in name.lower()), key=len)
    return applicable[0] if applicable else None


def load_hypernetworks(names, multipliers=None):
    """Make `names` the loaded hypernetworks (reusing those already loaded) and hook them into the model; names
    not found or files that cannot be read are reported in the job's comments."""
    already_loaded = {h.name: h for h in shared.loaded_hypernetworks if h.name in names}
    shared.loaded_hypernetworks.clear()
    problems = []
    for i, name in enumerate(names):
        hypernetwork = already_loaded.get(name)
        if hypernetwork is None:
            if name not in shared.hypernetworks:
                shared.reload_hypernetworks()
            try:
                hypernetwork = load_hypernetwork(name)
            except Exception as e:  # a user's file: corrupt, malicious or not a hypernetwork
                errors.display(e, f"loading hypernetwork {name}")
                problems.append(f"Hypernetwork could not be loaded: {name} ({e})")
                continue
        if hypernetwork is None:
            problems.append(f"Hypernetwork not found: {name}")
            continue
        hypernetwork.set_multiplier(multipliers[i] if multipliers else 1.0)
        shared.loaded_hypernetworks.append(hypernetwork)
    if problems:
        from modules import sd_hijack
        sd_hijack.model_hijack.comments.extend(problems)
    sync_attention_hooks(shared.sd_model)


def _apply(module, context):
    """context through one hypernetwork MLP, computed in the MLP's dtype and returned in the context's."""
    return module(context.to(module.linear[0].weight.dtype)).to(context.dtype)


def apply_single_hypernetwork(hypernetwork, context_k, context_v, layer=None):
    hypernetwork_layers = (hypernetwork.layers if hypernetwork is not None else {}).get(context_k.shape[2], None)
    if hypernetwork_layers is None:
        return context_k, context_v
    if layer is not None:
        layer.hyper_k, layer.hyper_v = hypernetwork_layers
    return _apply(hypernetwork_layers[0], context_k), _apply(hypernetwork_layers[1], context_v)


def apply_hypernetworks(hypernetworks, context, layer=None):
    """(context for the keys, context for the values) after each hypernetwork in turn."""
    context_k = context
    context_v = context
    for hypernetwork in hypernetworks:
        context_k, context_v = apply_single_hypernetwork(hypernetwork, context_k, context_v, layer)
    return context_k, context_v


def _context_hook(which):
    """A to_k (which=0) or to_v (which=1) pre-hook: the layer's input goes through the loaded hypernetworks."""
    def hook(module, args):
        context = args[0]
        for hypernetwork in shared.loaded_hypernetworks:
            pair = hypernetwork.layers.get(context.shape[-1])
            if pair is not None:
                context = _apply(pair[which], context)
        return (context,) + tuple(args[1:])
    return hook


_hooked = {"model": None, "handles": []}


def sync_attention_hooks(sd_model):
    """Hooks on every attention layer's to_k/to_v of sd_model while hypernetworks are loaded; none otherwise."""
    hooked_model = _hooked["model"]() if _hooked["model"] is not None else None
    wanted = sd_model is not None and bool(shared.loaded_hypernetworks)
    if wanted and hooked_model is sd_model:
        return
    for handle in _hooked["handles"]:
        handle.remove()
    _hooked["handles"].clear()
    _hooked["model"] = None
    if not wanted:
        return
    from ldm.modules.attention import CrossAttention
    for module in sd_model.model.diffusion_model.modules():
        if isinstance(module, CrossAttention):
            _hooked["handles"].append(module.to_k.register_forward_pre_hook(_context_hook(0)))
            _hooked["handles"].append(module.to_v.register_forward_pre_hook(_context_hook(1)))
    _hooked["model"] = weakref.ref(sd_model)
