"""Set up everything the test suite needs on a fresh machine, then run the whole suite.

`python run_tests.py [pytest arguments]`: creates ./venv when needed (as launch.py does), installs torch/torchvision
(TORCH_COMMAND), the project with its test extras, and Debian's chromium for the browser tests, then runs pytest.
"""
import os
import shutil
import subprocess
import sys

import launch

CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> None:
    """The browser tests drive Debian's chromium; install it when missing and we are allowed to."""
    if os.path.exists(CHROMIUM) or shutil.which("chromium"):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Debian's chromium for the browser tests", flush=True)
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
                       shell=True, check=True)
    else:
        print("chromium is not installed and cannot be installed here: browser tests will be skipped", flush=True)


def main() -> int:
    launch.ensure_venv_and_reexec(os.path.abspath(__file__), sys.argv[1:])
    launch.prepare_environment(extras="test")
    ensure_chromium()
    args = sys.argv[1:] or ["tests"]
    return subprocess.call([sys.executable, "-m", "pytest", *args], cwd=launch.ROOT)


if __name__ == "__main__":
    sys.exit(main())
