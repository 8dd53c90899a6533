"""Parses the flags once, after extensions' preload.py files had their chance to add some."""
import os
import sys

from modules import cmd_args, script_loading
from modules.paths_internal import extensions_builtin_dir, extensions_dir, script_path  # noqa: F401

parser = cmd_args.parser


def _running_under_test_runner():
    return "pytest" in os.path.basename(sys.argv[0]) or os.environ.get("SD_WEBUI_TEST_ARGV") is not None


def _preload_extensions():
    """Let extensions add flags (A1111's preload.py) before the command line is parsed."""
    script_loading.preload_extensions(extensions_builtin_dir, parser)
    script_loading.preload_extensions(extensions_dir, parser)


if not _running_under_test_runner():
    _preload_extensions()

if _running_under_test_runner():
    # Tests set the flags they need; the test runner's own argv is not ours.
    cmd_opts = parser.parse_args(os.environ.get("SD_WEBUI_TEST_ARGV", "").split())
elif os.environ.get("IGNORE_CMD_ARGS_ERRORS"):
    cmd_opts, _ = parser.parse_known_args()
else:
    cmd_opts = parser.parse_args()

cmd_opts.webui_is_non_local = any([cmd_opts.share, cmd_opts.listen, cmd_opts.server_name])
cmd_opts.disable_extension_access = cmd_opts.webui_is_non_local and not cmd_opts.enable_insecure_extension_access
