"""install.py calling launch.run_pip: installs from the package index once, and a failed install is reported by the
extension's name while the other extensions' installers still run. The "index" is a folder holding one wheel built
here (pip's --find-links with --no-index), and packages go into a temporary target folder, never the venv."""
import json
import os
import subprocess
import sys
import zipfile

import pytest

from modules import extensions, launch_utils, shared
from tests.extension_helpers import install_loader, write_extension

PACKAGE = "sdwebui_probe_pkg"


def build_wheel(folder):
    """A one-module wheel, written by hand (no build backend, no network)."""
    dist_info = f"{PACKAGE}-1.0.dist-info"
    files = {f"{PACKAGE}/__init__.py": "VALUE = 42\n",
             f"{dist_info}/METADATA": "Metadata-Version: 2.1\nName: sdwebui-probe-pkg\nVersion: 1.0\n",
             f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{dist_info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{dist_info}/RECORD"])
    path = os.path.join(folder, f"{PACKAGE}-1.0-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    index = tmp_path / "index"
    index.mkdir()
    build_wheel(str(index))
    target = tmp_path / "site"
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_TARGET", str(target))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("PYTHONPATH", str(target) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setattr(launch_utils, "_skip_install", False)
    monkeypatch.setattr(launch_utils, "_pip_done", set())
    return target


def test_run_pip_installs_from_the_index_once(local_index, monkeypatch):
    calls = []
    real_run = launch_utils.run
    monkeypatch.setattr(launch_utils, "run", lambda command, *a, **k: calls.append(command) or real_run(command, *a, **k))
    launch_utils.run_pip(f"install {PACKAGE}", "the probe package")
    launch_utils.run_pip(f"install {PACKAGE}", "the probe package")
    assert len(calls) == 1 and "-m pip install sdwebui_probe_pkg" in calls[0]
    check = subprocess.run([sys.executable, "-c", f"import {PACKAGE}; print({PACKAGE}.VALUE)"], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(local_index)})
    assert check.stdout.strip() == "42"


def test_a_failed_install_is_reported_by_extension_name_and_the_others_still_install(local_index, tmp_path, monkeypatch):
    root = tmp_path / "extensions"
    reports = install_loader(monkeypatch, root)
    installer = f"""
        import launch
        if not launch.is_installed("{PACKAGE}"):
            launch.run_pip("install {PACKAGE}", "probe")
        import {PACKAGE}
        open({str(tmp_path / 'first.txt')!r}, "w").write("installed")
    """
    write_extension(root, "a-broken-requirement", {"install.py": """
        import launch
        launch.run_pip("install sdwebui-no-such-package-anywhere", "a package that does not exist")
    """})
    write_extension(root, "b-needs-probe", {"install.py": installer})
    write_extension(root, "c-needs-probe-too", {"install.py": installer.replace("first.txt", "second.txt")})
    settings = tmp_path / "config.json"
    settings.write_text(json.dumps({}))
    monkeypatch.setattr(sys, "argv", ["launch.py"])
    extensions.run_extensions_installers(str(settings))

    [failure] = reports.matching("Error running install.py for extension a-broken-requirement")
    assert "Couldn't install a package that does not exist" in failure and "the web UI starts without" in failure
    assert (tmp_path / "first.txt").read_text() == "installed" and (tmp_path / "second.txt").read_text() == "installed"
    assert os.listdir(local_index) and len([d for d in os.listdir(local_index) if d.endswith(".dist-info")]) == 1
