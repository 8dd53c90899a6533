"""LoRA/LyCORIS networks: the files available, the networks loaded for the current job, and keeping the model's
weights in step with them (A1111: the built-in Lora extension's `networks`; extensions import it as `networks`
and read/replace its names, which are this module's own).

    list_available_networks()                     # rescan models/Lora, --lora-dir, models/LyCORIS
    load_networks(["style", "detail"], te_multipliers=[0.8, 1], unet_multipliers=[0.8, 0.5], dyn_dims=[None, None])
    loaded_networks                               # what the model's weights now hold (patched at once, in place)
    load_networks([])                             # back to the checkpoint's own weights, bit for bit
"""
import os
import re
import weakref

from modules import devices, errors, script_callbacks, sd_models, shared
from modules.lora import (
    layer_names, lora_patches, network, network_full, network_glora, network_hada, network_ia3, network_lokr,
    network_lora, network_norm, network_oft, weight_patching,
)

NETWORK_EXTENSIONS = [".pt", ".ckpt", ".safetensors"]

module_types = [
    network_lora.ModuleTypeLora(),
    network_hada.ModuleTypeHada(),
    network_ia3.ModuleTypeIa3(),
    network_oft.ModuleTypeOFT(),
    network_lokr.ModuleTypeLokr(),
    network_full.ModuleTypeFull(),
    network_norm.ModuleTypeNorm(),
    network_glora.ModuleTypeGLora(),
]

originals = lora_patches.LoraPatches()
extra_network_lora = None          # the registered ExtraNetworkLora (set by extra_networks_lora)
available_networks = {}            # name -> NetworkOnDisk
available_network_aliases = {}     # name, alias or subfolder/name -> NetworkOnDisk
loaded_networks: list = []         # the networks the model's weights hold (never rebound: extensions keep it)
loaded_bundle_embeddings = {}
networks_in_memory = {}            # name -> Network, kept up to opts.lora_in_memory_limit
available_network_hash_lookup = {}
forbidden_network_aliases = {}     # aliases shared by several files (lowercase): those files go by file name
apply_errors = {}                  # network name -> layers it could not change, reported in the job's comments
re_network_name = re.compile(r"(.*)\s*\([0-9a-fA-F]+\)")


# ---- the files -------------------------------------------------------------------------------------------------

def network_directories():
    """models/Lora, --lora-dir when it points elsewhere, and models/LyCORIS (--lyco-dir-backcompat) for old setups."""
    dirs = [os.path.join(shared.models_path, "Lora"), shared.cmd_opts.lora_dir, shared.cmd_opts.lyco_dir_backcompat]
    unique = []
    for d in dirs:
        if d and os.path.abspath(d) not in [os.path.abspath(u) for u in unique]:
            unique.append(d)
    return unique


def list_available_networks():
    """Rescan the network folders. A file is known by its file name, its metadata alias (ss_output_name) and its
    path under the folder without extension ("styles/ink"); an alias two files share is left to neither."""
    available_networks.clear()
    available_network_aliases.clear()
    forbidden_network_aliases.clear()
    available_network_hash_lookup.clear()
    forbidden_network_aliases["none"] = 1

    os.makedirs(os.path.join(shared.models_path, "Lora"), exist_ok=True)
    for directory in network_directories():
        for filename in shared.walk_files(directory, allowed_extensions=NETWORK_EXTENSIONS):
            if os.path.isdir(filename):
                continue
            name = os.path.splitext(os.path.basename(filename))[0]
            try:
                entry = network.NetworkOnDisk(name, filename)
            except OSError:
                errors.report(f"Failed to load network {name} from {filename}", exc_info=True)
                continue
            available_networks[name] = entry
            if entry.alias in available_network_aliases:
                forbidden_network_aliases[entry.alias.lower()] = 1
            available_network_aliases[name] = entry
            available_network_aliases[entry.alias] = entry
            relative = os.path.splitext(os.path.relpath(filename, directory))[0].replace(os.sep, "/")
            available_network_aliases.setdefault(relative, entry)


def update_available_networks_by_names(names):
    """Rescan when a name is not known yet (a file added since the last scan)."""
    if any(name not in available_network_aliases for name in names):
        list_available_networks()


def read_network_file(filename):
    """The file's tensors: safetensors directly, .pt/.ckpt only through the restricted unpickler (modules.safe)."""
    return sd_models.read_state_dict(filename, map_location="cpu")


# ---- loading and binding to the model --------------------------------------------------------------------------

def group_weights(state_dict):
    """{layer key (kohya form): {weight part: tensor in devices.dtype}} and the keys in no format we know."""
    groups, unknown = {}, []
    for key, tensor in state_dict.items():
        layer_key, part = layer_names.split_network_key(key)
        if layer_key is None:
            unknown.append(key)
            continue
        if tensor.is_floating_point():
            tensor = tensor.to(devices.dtype)  # as A1111: modules' up/down layers run in the compute dtype
        groups.setdefault(layer_key, {})[part] = tensor
    return groups, unknown


def load_network(name, network_on_disk):
    """Read a network file into a Network bound to the current model. Raises ValueError (corrupt file) or
    modules.safe.UnsafeCheckpointError (a pickle asking to run code) with the file named."""
    net = network.Network(name, network_on_disk)
    net.mtime = os.path.getmtime(network_on_disk.filename)
    state_dict = read_network_file(network_on_disk.filename)
    net.weight_groups, net.unknown_keys = group_weights(state_dict)
    if not net.weight_groups:
        raise ValueError(f"{network_on_disk.filename}: no LoRA/LyCORIS weights in this file "
                         f"(keys look like {', '.join(list(state_dict)[:3]) or 'nothing'})")
    if shared.sd_model is not None:
        bind_network(net, shared.sd_model)
    return net


def bind_network(net, sd_model):
    """Build net.modules for sd_model's layers (rebuilt in place when the model changed since)."""
    if net.bound_model is not None and net.bound_model() is sd_model:
        return
    tables = layer_tables(sd_model)
    net.modules.clear()
    net.unmatched_keys = []
    for key, weights in net.weight_groups.items():
        layer_name = tables.keys.get(key)
        if layer_name is None:
            net.unmatched_keys.append(key)
            continue
        net_weights = network.NetworkWeights(network_key=key, sd_key=layer_name, w=weights, sd_module=tables.layer_for(layer_name))
        try:
            module = next((m for m in (t.create_module(net, net_weights) for t in module_types) if m is not None), None)
        except (RuntimeError, ValueError, IndexError, KeyError) as e:
            report_error(net, f"{key}: {e}")
            continue
        if module is None:
            report_error(net, f"{key}: unsupported weights {sorted(weights)}")
            continue
        net.modules[layer_name] = module
    net.bound_model = weakref.ref(sd_model)
    if net.unmatched_keys:
        print(f"Network {net.name}: {len(net.unmatched_keys)} of {len(net.weight_groups)} layers match no layer of this model "
              f"(e.g. {', '.join(net.unmatched_keys[:3])})")


def layer_tables(sd_model):
    tables = getattr(sd_model, "network_layer_tables", None)
    if tables is None:
        assign_network_names_to_compvis_modules(sd_model)
        tables = sd_model.network_layer_tables
    return tables


def assign_network_names_to_compvis_modules(sd_model):
    """Name every layer networks may change (A1111's name: sets `network_layer_mapping` and each layer's
    `network_layer_name`); runs when a model is loaded."""
    tables = layer_names.LayerTables(sd_model)
    sd_model.network_layer_tables = tables
    sd_model.network_layer_mapping = tables.layers
    if getattr(sd_model, "network_patch_state", None) is None:
        sd_model.network_patch_state = weight_patching.ModelPatchState()


def report_error(net, message):
    count = apply_errors.get(net.name, 0)
    if count == 0:
        print(f"Network {net.name}: {message}")
    apply_errors[net.name] = count + 1


def purge_networks_from_memory():
    purged = False
    while len(networks_in_memory) > shared.opts.lora_in_memory_limit and len(networks_in_memory) > 0:
        name = next(iter(networks_in_memory))
        networks_in_memory.pop(name, None)
        purged = True
    if purged:
        devices.torch_gc()


def load_networks(names, te_multipliers=None, unet_multipliers=None, dyn_dims=None):
    """Make `names` (with their multipliers) the networks the model holds, and patch its weights now.
    Missing or unreadable files are reported in the job's comments; the others still apply."""
    update_available_networks_by_names(names)
    failed_to_load, failed_to_read = [], []
    # networks of the previous job are reused (a new multiplier needs no reading), whatever lora_in_memory_limit says
    previous = {net.name: net for net in loaded_networks}
    loaded_networks.clear()
    for i, name in enumerate(names):
        network_on_disk = available_network_aliases.get(name)
        net = networks_in_memory.get(name) or previous.get(name)
        if network_on_disk is not None:
            stale = net is None or net.network_on_disk.filename != network_on_disk.filename
            if stale or os.path.getmtime(network_on_disk.filename) > net.mtime:
                try:
                    net = load_network(name, network_on_disk)
                except Exception as e:  # a user's file: corrupt, malicious or not a network; the image is still made
                    errors.display(e, f"loading network {network_on_disk.filename}")
                    failed_to_read.append(f"{name} ({e})")
                    continue
                networks_in_memory.pop(name, None)
                networks_in_memory[name] = net
            net.mentioned_name = name
            network_on_disk.read_hash()
        if net is None:
            failed_to_load.append(name)
            continue
        net.te_multiplier = te_multipliers[i] if te_multipliers else 1.0
        net.unet_multiplier = unet_multipliers[i] if unet_multipliers else 1.0
        net.dyn_dim = dyn_dims[i] if dyn_dims else None
        loaded_networks.append(net)

    comments = []
    if failed_to_load:
        comments.append(f"Lora not found: {', '.join(failed_to_load)}")
    if failed_to_read:
        comments.append(f"Lora could not be loaded: {'; '.join(failed_to_read)}")
    if comments:
        from modules import sd_hijack
        sd_hijack.model_hijack.comments.extend(comments)
        if shared.opts.lora_not_found_warning_console:
            print("\n".join(comments))
    purge_networks_from_memory()
    sync_model(shared.sd_model)


# ---- keeping the weights in step ---------------------------------------------------------------------------------

def applied_signature():
    return tuple((net.name, net.mtime, net.te_multiplier, net.unet_multiplier, net.dyn_dim) for net in loaded_networks)


def sync_model(sd_model):
    """Patch or restore sd_model's layers so they hold exactly `loaded_networks`; a no-op when they already do.
    Also runs before each text-encoder and UNet forward, so changes made by extensions between steps apply."""
    if sd_model is None:
        return
    tables = layer_tables(sd_model)
    state = sd_model.network_patch_state
    signature = applied_signature()
    if state.signature == signature:
        return
    for net in loaded_networks:
        bind_network(net, sd_model)
    weight_patching.install_sync_hooks(sd_model, [part.root for part in tables.parts], sync_model)
    weight_patching.sync_layers(sd_model, tables.layers, loaded_networks, signature, network_apply_weights)


# ---- A1111's per-layer entry points, for extensions that drive layers themselves ---------------------------------

def network_apply_weights(self):
    """Make this layer hold the loaded networks (a no-op when it already does)."""
    weight_patching.apply_to_layer(self, loaded_networks, report_error)


def network_restore_weights_from_backup(self):
    weight_patching.restore_layer(self)


def network_reset_cached_weight(self):
    self.network_current_names = ()
    weight_patching.forget_backup(self)


def network_forward(org_module, input, original_forward):
    """The layer's output with the networks added to it rather than to its weights (A1111's functional mode)."""
    if len(loaded_networks) == 0:
        return original_forward(org_module, input)
    input = devices.cond_cast_unet(input)
    network_restore_weights_from_backup(org_module)
    network_reset_cached_weight(org_module)
    y = original_forward(org_module, input)
    layer_name = getattr(org_module, "network_layer_name", None)
    for net in loaded_networks:
        module = net.modules.get(layer_name, None)
        if module is not None:
            y = module.forward(input, y)
    return y


def network_Linear_forward(self, input):
    network_apply_weights(self)
    return originals.Linear_forward(self, input)


def network_Linear_load_state_dict(self, *args, **kwargs):
    network_reset_cached_weight(self)
    return originals.Linear_load_state_dict(self, *args, **kwargs)


def network_Conv2d_forward(self, input):
    network_apply_weights(self)
    return originals.Conv2d_forward(self, input)


def network_Conv2d_load_state_dict(self, *args, **kwargs):
    network_reset_cached_weight(self)
    return originals.Conv2d_load_state_dict(self, *args, **kwargs)


def network_GroupNorm_forward(self, input):
    network_apply_weights(self)
    return originals.GroupNorm_forward(self, input)


def network_GroupNorm_load_state_dict(self, *args, **kwargs):
    network_reset_cached_weight(self)
    return originals.GroupNorm_load_state_dict(self, *args, **kwargs)


def network_LayerNorm_forward(self, input):
    network_apply_weights(self)
    return originals.LayerNorm_forward(self, input)


def network_LayerNorm_load_state_dict(self, *args, **kwargs):
    network_reset_cached_weight(self)
    return originals.LayerNorm_load_state_dict(self, *args, **kwargs)


def network_MultiheadAttention_forward(self, *args, **kwargs):
    network_apply_weights(self)
    return originals.MultiheadAttention_forward(self, *args, **kwargs)


def network_MultiheadAttention_load_state_dict(self, *args, **kwargs):
    network_reset_cached_weight(self)
    return originals.MultiheadAttention_load_state_dict(self, *args, **kwargs)


def convert_diffusers_name_to_compvis(key, is_sd2=False):
    """The layer name a network key ("lora_unet_down_blocks_0_...") names in the loaded model, or the key itself
    (supermerger calls this; is_sd2 is implied by the model)."""
    if shared.sd_model is None:
        return key
    return layer_tables(shared.sd_model).keys.get(key, key)


# ---- pasting infotexts -----------------------------------------------------------------------------------------

re_lora_tag_name = re.compile("<lora:([^:]+):")


def infotext_pasted(infotext, params):
    """Prompt tags of a pasted infotext renamed to the local file with the same hash ("Lora hashes"), and kohya
    additional-networks fields (AddNet Model N) turned into <lora:...> tags."""
    added = []
    for k in params:
        if not k.startswith("AddNet Model "):
            continue
        num = k[13:]
        if params.get("AddNet Module " + num) != "LoRA":
            continue
        name = params.get("AddNet Model " + num)
        if name is None:
            continue
        m = re_network_name.match(name)
        if m:
            name = m.group(1)
        multiplier = params.get("AddNet Weight A " + num, "1.0")
        added.append(f"<lora:{name}:{multiplier}>")
    if added:
        params["Prompt"] = params.get("Prompt", "") + "\n" + "".join(added)

    hashes = params.get("Lora hashes")
    if not hashes or "Prompt" not in params:
        return
    pairs = [x.strip().split(":", 1) for x in str(hashes).split(",") if ":" in x]
    by_name = {name.strip(): shorthash.strip() for name, shorthash in pairs}

    def local_name(m):
        shorthash = by_name.get(m.group(1))
        local = available_network_hash_lookup.get(shorthash) if shorthash else None
        return f"<lora:{local.get_alias()}:" if local is not None else m.group(0)

    params["Prompt"] = re_lora_tag_name.sub(local_name, params["Prompt"])


def register_callbacks():
    """What A1111's Lora extension script registers besides the tag: renaming pasted tags by hash. (Its other
    callback, naming the layers on model load, is called by sd_models itself.)"""
    script_callbacks.remove_callbacks_for_function(infotext_pasted)
    script_callbacks.on_infotext_pasted(infotext_pasted)

