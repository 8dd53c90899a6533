"""What the Extensions tab does, without the UI: install from git, enable/disable, check for and apply updates.

Every change is refused when the UI is exposed (--listen, --share, --server-name) unless
--enable-insecure-extension-access, as in A1111, because installing an extension runs its code.
"""
import datetime
import json
import os
import re
import shutil
import subprocess
import urllib.request

from modules import errors, extensions, paths_internal, shared

DEFAULT_INDEX_URL = os.environ.get("WEBUI_EXTENSIONS_INDEX", "https://raw.githubusercontent.com/AUTOMATIC1111/stable-diffusion-webui-extensions/master/index.json")
EXTENSION_MARKERS = ("scripts", "install.py", "preload.py", "javascript", "style.css", "localizations", "metadata.ini")


class ExtensionAccessError(PermissionError):
    pass


def check_access():
    if shared.cmd_opts.disable_extension_access:
        raise ExtensionAccessError(
            "Extension changes are disabled because the UI is exposed to the network (--listen, --share or "
            "--server-name). Restart with --enable-insecure-extension-access to allow them.")


def normalize_git_url(url):
    if url is None:
        return ""
    url = url.strip().rstrip("/")
    return re.sub(r"\.git$", "", url)


def _run_git(args, cwd=None, timeout=120):
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or f"git {' '.join(args)} failed with code {result.returncode}")
    return result.stdout


def default_dirname(url):
    name = normalize_git_url(url).split("/")[-1].split(":")[-1]
    return name


def install_from_url(url, branch=None, dirname=None):
    """Clone into a temporary folder, check it is an extension, move it into extensions/, run its install.py.

    On any failure nothing is left in extensions/; the message names what went wrong.
    """
    check_access()
    url = (url or "").strip()
    if not url:
        raise ValueError("No URL given: enter the git URL of the extension.")
    dirname = (dirname or "").strip() or default_dirname(url)
    if not dirname or dirname in (".", "..") or "/" in dirname or "\\" in dirname:
        raise ValueError(f"Cannot use {dirname!r} as the extension's folder name.")
    target_dir = os.path.join(paths_internal.extensions_dir, dirname)
    if os.path.exists(target_dir):
        raise FileExistsError(f"Extension folder {target_dir} already exists; remove it or choose another folder name.")
    normalized = normalize_git_url(url)
    for ext in extensions.extensions:
        ext.read_info_from_repo()
        if ext.remote and normalize_git_url(ext.remote) == normalized:
            raise FileExistsError(f"Extension with this URL is already installed: {ext.name}")

    tmp_root = os.path.join(shared.data_path, "tmp")
    os.makedirs(tmp_root, exist_ok=True)
    tmp_dir = os.path.join(tmp_root, dirname)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    try:
        args = ["clone", "--filter=blob:none"]
        if branch:
            args += ["--branch", branch.strip()]
        try:
            _run_git(args + [url, tmp_dir])
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            raise RuntimeError(f"Could not clone {url}: {e}") from e
        try:
            _run_git(["submodule", "update", "--init", "--recursive"], cwd=tmp_dir)
        except Exception:
            errors.report(f"Could not update submodules of {url}", exc_info=True)
        if not any(os.path.exists(os.path.join(tmp_dir, marker)) for marker in EXTENSION_MARKERS):
            raise ValueError(f"{url} does not look like an extension: it has none of {', '.join(EXTENSION_MARKERS)}.")
        os.makedirs(paths_internal.extensions_dir, exist_ok=True)
        shutil.move(tmp_dir, target_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    if not extensions.run_extension_installer(target_dir):
        shutil.rmtree(target_dir, ignore_errors=True)
        raise RuntimeError(f"The install.py of {dirname} failed; the extension was removed. See the console for its output.")
    extensions.list_extensions()
    return target_dir


def apply_enabled(enabled_names, disable_all="none"):
    """Persist which extensions are enabled (takes effect on the next UI reload / restart)."""
    check_access()
    if disable_all not in ("none", "extra", "all"):
        raise ValueError(f"Disable all extensions must be none, extra or all, not {disable_all!r}")
    enabled_names = set(enabled_names or [])
    disabled = sorted(ext.name for ext in extensions.extensions if ext.name not in enabled_names and not ext.is_builtin)
    shared.opts.set("disabled_extensions", disabled)
    shared.opts.set("disable_all_extensions", disable_all)
    shared.opts.save(shared.config_filename)
    return disabled


def backup_config(reason="Backup (pre-update)"):
    """Save the settings and each extension's commit, so an update can be undone by hand."""
    os.makedirs(paths_internal.config_states_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y_%m_%d-%H_%M_%S")
    path = os.path.join(paths_internal.config_states_dir, f"{stamp}_{re.sub(r'[^A-Za-z0-9_-]+', '_', reason)}.json")
    state = {"name": reason, "created_at": stamp, "webui": dict(shared.opts.data), "extensions": {}}
    for ext in extensions.extensions:
        ext.read_info_from_repo()
        state["extensions"][ext.name] = {"remote": ext.remote, "commit_hash": ext.commit_hash, "branch": ext.branch, "enabled": ext.enabled}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf8") as file:
        json.dump(state, file, indent=2, default=str)
    os.replace(tmp, path)
    return path


def check_for_updates():
    check_access()
    for ext in extensions.extensions:
        if ext.is_builtin:
            continue
        ext.read_info_from_repo()
        ext.check_updates()
    return {ext.name: ext.status for ext in extensions.extensions if not ext.is_builtin}


def update(names):
    """Back up the config, then fast-forward the named extensions to their remote's latest commit."""
    check_access()
    names = list(names or [])
    if not names:
        return {}
    backup_config()
    results = {}
    for ext in extensions.extensions:
        if ext.name not in names:
            continue
        try:
            ext.fetch_and_reset_hard("@{u}")
            ext.read_info_from_repo()
            results[ext.name] = f"updated to {ext.version}"
        except Exception as e:
            errors.report(f"Error updating extension {ext.name}", exc_info=True)
            results[ext.name] = f"error: {e}"
    return results


def load_index(source):
    """The "Available" list: an index JSON from a URL or a local file; a closed network says so."""
    source = (source or "").strip() or DEFAULT_INDEX_URL
    try:
        if os.path.exists(source):
            with open(source, encoding="utf8") as file:
                data = json.load(file)
        else:
            with urllib.request.urlopen(source, timeout=10) as response:
                data = json.loads(response.read().decode("utf8"))
    except (OSError, ValueError) as e:
        raise RuntimeError(f"Could not load the extension index from {source} ({e}); is the network reachable?") from e
    items = data.get("extensions", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise RuntimeError(f"The extension index at {source} has no 'extensions' list.")
    installed = {normalize_git_url(ext.remote) for ext in extensions.extensions if ext.remote}
    return [dict(item, installed=normalize_git_url(item.get("url")) in installed) for item in items if isinstance(item, dict)]
