"""Public path names extensions import (A1111: modules.paths)."""
import os
import sys

from modules.paths_internal import (  # noqa: F401  (re-exported for extensions)
    script_path, data_path, models_path, extensions_dir, extensions_builtin_dir, modules_path,
    default_output_dir, sd_model_file, default_sd_model_file, config_states_dir,
)

# The repository root must be importable so `ldm.*` and `modules.*` resolve for extensions.
if script_path not in sys.path:
    sys.path.insert(0, script_path)

paths = {}  # A1111 kept paths to cloned repositories here; ours ship in the tree.
