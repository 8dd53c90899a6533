"""Command-line flags keep A1111's names and meaning; bad flags fail the way argparse does."""
import os
import subprocess
import sys

import pytest

from modules import cmd_args
from webui import app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(*argv):
    return cmd_args.parser.parse_args(list(argv))


def test_a1111_flags_parse_with_their_meaning():
    opts = parse("--port", "7861", "--listen", "--share", "--gradio-auth", "me:secret", "--ckpt", "a.safetensors",
                 "--ckpt-dir", "/ckpts", "--vae-path", "v.pt", "--data-dir", "/data", "--use-cpu", "all",
                 "--precision", "full", "--no-half", "--no-half-vae", "--skip-install", "--autolaunch")
    assert opts.port == 7861 and opts.listen and opts.share
    assert opts.gradio_auth == "me:secret" and opts.ckpt == "a.safetensors" and opts.ckpt_dir == "/ckpts"
    assert opts.vae_path == "v.pt" and opts.data_dir == "/data" and opts.use_cpu == ["all"]
    assert opts.precision == "full" and opts.no_half and opts.no_half_vae and opts.skip_install and opts.autolaunch


def test_defaults_serve_locally_on_7860():
    opts = parse()
    assert opts.port is None and not opts.listen and not opts.share
    assert app.server_name(opts) == "127.0.0.1"
    assert app.server_name(parse("--listen")) == "0.0.0.0"
    assert app.server_name(parse("--listen", "--server-name", "example.local")) == "example.local"


def test_precision_choices_are_checked():
    with pytest.raises(SystemExit):
        parse("--precision", "quarter")


def test_gradio_auth_accepts_several_users_and_a_file(tmp_path):
    opts = parse("--gradio-auth", "a:1,b:2:with:colons")
    assert app.gradio_auth_credentials(opts) == [("a", "1"), ("b", "2:with:colons")]
    auth_file = tmp_path / "auth.txt"
    auth_file.write_text("c:3\nd:4,e:5\n")
    opts = parse("--gradio-auth-path", str(auth_file))
    assert app.gradio_auth_credentials(opts) == [("c", "3"), ("d", "4"), ("e", "5")]
    with pytest.raises(SystemExit):
        app.gradio_auth_credentials(parse("--gradio-auth", "nopassword"))


def test_unknown_flag_is_an_argparse_error(tmp_path):
    env = dict(os.environ, SD_WEBUI_DATA_DIR=str(tmp_path))
    env.pop("SD_WEBUI_TEST_ARGV", None)
    result = subprocess.run([sys.executable, "launch.py", "--skip-prepare-environment", "--no-such-flag"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_help_lists_the_flags(tmp_path):
    env = dict(os.environ, SD_WEBUI_DATA_DIR=str(tmp_path))
    env.pop("SD_WEBUI_TEST_ARGV", None)
    result = subprocess.run([sys.executable, "launch.py", "--skip-prepare-environment", "--help"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for flag in ("--port", "--listen", "--share", "--gradio-auth", "--ckpt-dir", "--vae-path", "--no-half-vae", "--use-cpu"):
        assert flag in result.stdout
