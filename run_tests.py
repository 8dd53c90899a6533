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


EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"


def ensure_chromium() -> None:
    """The browser tests drive Debian's chromium, and the page's tool buttons (✕ 📋 💾 🔄) need a colour emoji font
    to show as more than empty boxes; install what is missing when we are allowed to."""
    packages = [name for name, present in (("chromium", os.path.exists(CHROMIUM) or shutil.which("chromium")),
                                           ("fonts-noto-color-emoji", os.path.exists(EMOJI_FONT))) if not present]
    if not packages:
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"Installing Debian's {' and '.join(packages)} for the browser tests", flush=True)
        subprocess.run(f"apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {' '.join(packages)}",
                       shell=True, check=True)
    else:
        print(f"{', '.join(packages)} not installed and cannot be installed here: browser tests may be skipped", flush=True)


def main() -> int:
    launch.ensure_venv_and_reexec(os.path.abspath(__file__), sys.argv[1:])
    launch.prepare_environment(extras="test")
    ensure_chromium()
    args = sys.argv[1:] or ["tests"]
    return subprocess.call([sys.executable, "-m", "pytest", *args], cwd=launch.ROOT)


if __name__ == "__main__":
    sys.exit(main())
