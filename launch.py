"""Entry point: prepare the environment (venv, torch, the project), then start the web UI.

`python launch.py [flags]` works on a fresh machine with only Python and pip: it creates ./venv when not already in
a virtual environment, re-runs itself there, installs torch/torchvision through TORCH_COMMAND (as A1111) and the
project with its dependencies, and starts the UI. A second run finds everything installed and starts in seconds.
Extensions import this module for A1111's helpers (`launch.is_installed`, `launch.run_pip`, `launch.run`, ...).
"""
import hashlib
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV_DIR = os.environ.get("VENV_DIR") or os.path.join(ROOT, "venv")
DEFAULT_TORCH_COMMAND = "pip install torch torchvision"
INSTALL_MARKER = ".sd-webui-installed"

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from modules.cpu_threading import prefer_passive_omp_wait  # noqa: E402  (before anything imports torch)

prefer_passive_omp_wait()


def in_virtualenv() -> bool:
    return sys.prefix != getattr(sys, "base_prefix", sys.prefix) or bool(os.environ.get("CONDA_PREFIX"))


def venv_python(venv_dir: str = VENV_DIR) -> str:
    return os.path.join(venv_dir, "Scripts", "python.exe") if os.name == "nt" else os.path.join(venv_dir, "bin", "python")


def ensure_venv_and_reexec(script: str, argv: list[str]) -> None:
    """Outside a virtual environment: create ./venv (once) and run the same command inside it."""
    if in_virtualenv() or os.environ.get("SD_WEBUI_NO_VENV"):
        return
    python = venv_python()
    if not os.path.exists(python):
        print(f"Creating virtual environment in {VENV_DIR}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", VENV_DIR], check=True)
    os.execv(python, [python, script, *argv])


def _pip(args: str, desc: str) -> None:
    print(desc, flush=True)
    command = f'"{sys.executable}" -m pip {args} --prefer-binary'
    if os.environ.get("INDEX_URL"):
        command += f" --index-url {os.environ['INDEX_URL']}"
    result = subprocess.run(command, shell=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"Installation failed: {command}")


def _installed(package: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(package) is not None


def _project_fingerprint(extras: str) -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        return hashlib.sha256(file.read() + extras.encode()).hexdigest()


def prepare_environment(extras: str = "") -> None:
    """Install torch/torchvision (TORCH_COMMAND) and the project once; later runs only compare a fingerprint."""
    torch_command = os.environ.get("TORCH_COMMAND", DEFAULT_TORCH_COMMAND)
    if "--reinstall-torch" in sys.argv or not _installed("torch") or not _installed("torchvision"):
        command = torch_command[len("pip "):] if torch_command.startswith("pip ") else torch_command
        _pip(command, f"Installing torch and torchvision: {torch_command}")
    marker = os.path.join(sys.prefix, INSTALL_MARKER)
    fingerprint = _project_fingerprint(extras)
    if not os.path.exists(marker) or open(marker).read().strip() != fingerprint:
        target = f".[{extras}]" if extras else "."
        _pip(f'install -e "{target}"', "Installing the web UI's requirements")
        with open(marker, "w") as file:
            file.write(fingerprint)


def run_extension_installers() -> None:
    from modules import extensions  # only the standard library: importable before the project is installed
    settings_file = os.path.join(os.environ.get("SD_WEBUI_DATA_DIR") or ROOT, "config.json")
    extensions.run_extensions_installers(settings_file=settings_file)


def start() -> None:
    from webui import app
    app.webui()


def main() -> None:
    ensure_venv_and_reexec(os.path.abspath(__file__), sys.argv[1:])
    if "--skip-prepare-environment" not in sys.argv:
        prepare_environment()
        if "--skip-install" not in sys.argv:
            run_extension_installers()
    if "--exit" in sys.argv:
        print("Exiting because of --exit argument")
        return
    start()


# A1111's helpers that extensions' install.py and scripts call as `launch.<name>` (standard library only).
from modules.launch_utils import *  # noqa: E402,F401,F403

if __name__ == "__main__":
    main()


def __getattr__(name):
    # `launch.args` (the parsed flags) and other helpers computed on first use.
    from modules import launch_utils
    return getattr(launch_utils, name)
