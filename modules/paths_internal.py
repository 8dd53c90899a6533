"""Where things live on disk, decided before flags are parsed (A1111 module name)."""
import argparse
import os
import sys

cwd = os.getcwd()
script_path = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
modules_path = os.path.join(script_path, "modules")

# --data-dir and --models-dir must be known before the full parser exists, so read them early.
_early = argparse.ArgumentParser(add_help=False)
_early.add_argument("--data-dir", type=str, default=os.path.dirname(modules_path))
_early.add_argument("--models-dir", type=str, default=None)
_early_args, _ = _early.parse_known_args(sys.argv[1:] if "pytest" not in os.path.basename(sys.argv[0]) else [])

data_path = os.path.realpath(os.environ.get("SD_WEBUI_DATA_DIR") or _early_args.data_dir)
models_path = os.path.realpath(_early_args.models_dir) if _early_args.models_dir else os.path.join(data_path, "models")
extensions_dir = os.path.join(data_path, "extensions")
extensions_builtin_dir = os.path.join(script_path, "extensions-builtin")
config_states_dir = os.path.join(script_path, "config_states")
default_output_dir = os.path.join(data_path, "outputs")
sd_default_config = None
sd_model_file = os.path.join(script_path, "model.ckpt")
default_sd_model_file = sd_model_file
