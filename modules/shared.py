"""The state that is global in A1111 is global here too, in this one place (A1111: modules.shared)."""
import os
import sys

from modules import shared_cmd_options, options, shared_options, shared_state, devices, paths_internal, util

cmd_opts = shared_cmd_options.cmd_opts
parser = shared_cmd_options.parser

options_templates = shared_options.options_templates
OptionInfo = options.OptionInfo
OptionHTML = options.OptionHTML
options_section = options.options_section
restricted_opts = shared_options.restricted_opts

opts = options.Options(options_templates, restricted_opts)
config_filename = cmd_opts.ui_settings_file
state = shared_state.State()

devices.configure(cmd_opts)
device = devices.device
weight_load_location = None

sd_model = None            # set by modules.sd_models.load_model
sd_upscalers = []          # filled by modules.modelloader.load_upscalers
face_restorers = []
prompt_styles = None       # modules.styles.StyleDatabase, created at startup
hypernetworks = {}
loaded_hypernetworks = []
total_tqdm = None          # modules.shared_total_tqdm.TotalTQDM, set below
mem_mon = None
demo = None                # the Gradio Blocks, once built
interrogator = None
sd_vae = None              # name of the VAE in use, if a separate one was loaded

hide_dirs = {"visible": not cmd_opts.hide_ui_dir_config}

models_path = paths_internal.models_path
script_path = paths_internal.script_path
data_path = paths_internal.data_path

xformers_available = False
parallel_processing_allowed = True  # False while --medvram/--lowvram move parts of the model (modules.lowvram)
progress_print_out = sys.stdout
tab_names = []             # titles of the page's tabs, filled when the UI is built (ui_tab_order / hidden_tabs choices)

# A1111 kept these here before moving them to modules.util; extensions still use both names.
natural_sort_key = util.natural_sort_key
listfiles = util.listfiles
html_path = util.html_path
html = util.html
walk_files = util.walk_files
ldm_print = util.ldm_print

# Hires fix "Latent" upscaler names -> torch interpolate mode and antialias.
latent_upscale_modes = {
    "Latent": {"mode": "bilinear", "antialias": False},
    "Latent (antialiased)": {"mode": "bilinear", "antialias": True},
    "Latent (bicubic)": {"mode": "bicubic", "antialias": False},
    "Latent (bicubic antialiased)": {"mode": "bicubic", "antialias": True},
    "Latent (nearest)": {"mode": "nearest", "antialias": False},
    "Latent (nearest-exact)": {"mode": "nearest-exact", "antialias": False},
}
latent_upscale_default_mode = "Latent"


def list_checkpoint_tiles(use_short=False):
    from modules import shared_items
    return shared_items.list_checkpoint_tiles(use_short)


def reload_hypernetworks():
    """Rescan --hypernetwork-dir into `hypernetworks` ({name: path}), in place."""
    from modules.hypernetworks import hypernetwork
    found = hypernetwork.list_hypernetworks(cmd_opts.hypernetwork_dir)
    hypernetworks.clear()
    hypernetworks.update(found)


def data_relative(path):
    """Output folders in settings are relative to the data dir (--data-dir), as users expect."""
    return os.path.join(data_path, path) if path else path


from modules import shared_total_tqdm  # noqa: E402  (it reads shared.opts/state when used)

total_tqdm = shared_total_tqdm.TotalTQDM()
