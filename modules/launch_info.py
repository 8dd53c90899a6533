"""The program's version as shown in infotexts ("Version: ..."), from git when available."""
import functools
import os
import subprocess

from modules.paths_internal import script_path

VERSION = "v0.1.0"


@functools.lru_cache(maxsize=1)
def version():
    """`git describe --tags` of the checkout, or the packaged version when git cannot tell."""
    try:
        out = subprocess.run(["git", "-C", script_path, "describe", "--tags"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return VERSION


@functools.lru_cache(maxsize=1)
def commit_hash():
    try:
        out = subprocess.run(["git", "-C", script_path, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else "<none>"
    except (OSError, subprocess.SubprocessError):
        return "<none>"


def is_repo():
    return os.path.isdir(os.path.join(script_path, ".git"))
