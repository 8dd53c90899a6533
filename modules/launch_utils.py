"""Helpers that extensions' install.py call through `import launch` (A1111: modules.launch_utils).

Importable without torch or gradio: launch.py does `from modules.launch_utils import *` before anything heavy.
"""
import importlib.metadata
import importlib.util
import os
import re
import shlex
import subprocess
import sys

from modules import launch_info

__all__ = ["python", "git", "index_url", "dir_repos", "default_command_live", "is_installed", "repo_dir", "run",
           "run_pip", "check_run_python", "git_clone", "git_fix_workspace", "git_pull_recursive", "commit_hash",
           "git_tag", "run_extension_installer", "run_extensions_installers", "list_extensions", "RunError"]

python = sys.executable
git = os.environ.get("GIT", "git")
index_url = os.environ.get("INDEX_URL", "")
script_path = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
dir_repos = "repositories"
default_command_live = os.environ.get("WEBUI_LAUNCH_LIVE_OUTPUT") == "1"

_skip_install = "--skip-install" in sys.argv


class RunError(RuntimeError):
    """A command run for an extension failed; the message holds the command, its exit code and output."""


def is_installed(package):
    """Whether `package` (a distribution or import name, optionally with ==/>= version) is installed."""
    name = re.split(r"[<>=!~ \[]", str(package).strip(), maxsplit=1)[0]
    if not name:
        return False
    try:
        dist_version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.util.find_spec(name.replace("-", "_")) is not None
        except (ImportError, ValueError):
            return False
    match = re.search(r"(==|>=|<=|>|<)\s*([\w.]+)", str(package))
    if not match:
        return True
    op, wanted = match.groups()
    have, want = _version_tuple(dist_version), _version_tuple(wanted)
    return {"==": have == want, ">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want}[op]


def _version_tuple(v):
    return tuple(int(x) if x.isdigit() else 0 for x in re.findall(r"\d+|[a-z]+", v.lower()))


def repo_dir(name):
    return os.path.join(script_path, dir_repos, name)


def run(command, desc=None, errdesc=None, custom_env=None, live: bool = default_command_live) -> str:
    """Run a shell command; returns its stdout; raises RunError with the output when it fails."""
    if desc is not None:
        print(desc, flush=True)
    run_kwargs = {"args": command, "shell": isinstance(command, str), "env": os.environ if custom_env is None else custom_env,
                  "encoding": "utf8", "errors": "ignore"}
    if not live:
        run_kwargs["stdout"] = run_kwargs["stderr"] = subprocess.PIPE
    result = subprocess.run(**run_kwargs)
    if result.returncode != 0:
        error_bits = [f"{errdesc or 'Error running command'}.", f"Command: {command}", f"Error code: {result.returncode}"]
        if result.stdout:
            error_bits.append(f"stdout: {result.stdout}")
        if result.stderr:
            error_bits.append(f"stderr: {result.stderr}")
        raise RunError("\n".join(error_bits))
    return result.stdout or ""


def check_run_python(code: str) -> bool:
    result = subprocess.run([python, "-c", code], capture_output=True)
    return result.returncode == 0


_pip_done = set()  # pip commands that already succeeded in this process


def run_pip(command, desc=None, live=default_command_live):
    """`python -m pip <command> --prefer-binary [--index-url INDEX_URL]` from the package index, once per process;
    nothing with --skip-install. A failure raises RunError naming what could not be installed."""
    if _skip_install or command in _pip_done:
        return ""
    index_url_line = f" --index-url {index_url}" if index_url else ""
    result = run(f'"{python}" -m pip {command} --prefer-binary{index_url_line}', desc=f"Installing {desc}" if desc else None,
                 errdesc=f"Couldn't install {desc or command}", live=live)
    _pip_done.add(command)
    importlib.invalidate_caches()  # is_installed() sees what was just installed
    return result


def git_fix_workspace(dir, name):
    run(f'"{git}" -C "{dir}" fetch --refetch --no-auto-gc', f"Fetching all contents for {name}", f"Couldn't fetch {name}", live=True)
    run(f'"{git}" -C "{dir}" gc --aggressive --prune=now', f"Pruning {name}", f"Couldn't prune {name}", live=True)


def git_clone(url, dir, name, commithash=None):
    """Clone `url` into `dir` (or, when it exists, fetch and check out `commithash`)."""
    if os.path.exists(dir):
        if commithash is None:
            return
        current = run(f'"{git}" -C "{dir}" rev-parse HEAD', None, f"Couldn't determine {name}'s hash: {commithash}").strip()
        if current == commithash:
            return
        if run(f'"{git}" -C "{dir}" config --get remote.origin.url', None, f"Couldn't determine {name}'s origin URL").strip() != url:
            run(f'"{git}" -C "{dir}" remote set-url origin "{url}"', None, f"Failed to set {name}'s origin URL")
        run(f'"{git}" -C "{dir}" fetch', f"Fetching updates for {name}...", f"Couldn't fetch {name}")
        run(f'"{git}" -C "{dir}" checkout {commithash}', f"Checking out commit for {name} with hash: {commithash}...",
            f"Couldn't checkout commit {commithash} for {name}")
        return
    run(f'"{git}" clone --config core.filemode=false "{url}" "{dir}"', f"Cloning {name} into {dir}...", f"Couldn't clone {name}")
    if commithash is not None:
        run(f'"{git}" -C "{dir}" checkout {commithash}', None, f"Couldn't checkout {name}'s hash: {commithash}")


def git_pull_recursive(dir):
    for subdir, _, _ in os.walk(dir):
        if os.path.exists(os.path.join(subdir, ".git")):
            try:
                output = subprocess.check_output([git, "-C", subdir, "pull", "--autostash"])
                print(f"Pulled changes for repository in '{subdir}':\n{output.decode('utf-8').strip()}\n")
            except subprocess.CalledProcessError as e:
                print(f"Couldn't perform 'git pull' on repository in '{subdir}':\n{e.output.decode('utf-8').strip()}\n")


def commit_hash():
    try:
        return subprocess.check_output([git, "-C", script_path, "rev-parse", "HEAD"], shell=False, encoding="utf8",
                                       stderr=subprocess.DEVNULL).strip()
    except Exception:
        return "<none>"


def git_tag():
    try:
        return subprocess.check_output([git, "-C", script_path, "describe", "--tags"], shell=False, encoding="utf8",
                                       stderr=subprocess.DEVNULL).strip()
    except Exception:  # no git, or not a checkout: the packaged version
        return launch_info.version()


def list_extensions(settings_file):
    """Names of folders in extensions/ that are enabled according to the settings file (for preload)."""
    import json
    from modules import paths_internal
    settings = {}
    try:
        if settings_file and os.path.isfile(settings_file):
            with open(settings_file, encoding="utf8") as f:
                settings = json.load(f)
    except Exception:
        print(f"*** Could not load settings from {settings_file}", file=sys.stderr)
    disabled = set(settings.get("disabled_extensions", []) or [])
    if settings.get("disable_all_extensions", "none") != "none" or "--disable-extra-extensions" in sys.argv \
            or "--disable-all-extensions" in sys.argv or not os.path.isdir(paths_internal.extensions_dir):
        return []
    return [x for x in sorted(os.listdir(paths_internal.extensions_dir)) if x not in disabled and not x.startswith(".")]


def run_extension_installer(extension_dir):
    from modules import extensions
    return extensions.run_extension_installer(extension_dir)


def run_extensions_installers(settings_file):
    from modules import extensions
    return extensions.run_extensions_installers(settings_file)


def prepare_environment_args():
    """The flags install.py scripts may inspect (A1111 parsed them into `args`)."""
    return shlex.split(os.environ.get("COMMANDLINE_ARGS", ""))


def __getattr__(name):
    # `launch.args`: the parsed flags, computed on first use so importing stays cheap.
    if name == "args":
        from modules import cmd_args
        value, _ = cmd_args.parser.parse_known_args(prepare_environment_args() + sys.argv[1:])
        globals()["args"] = value
        return value
    raise AttributeError(name)
