"""Starts the real web UI in a subprocess on a free port, for browser tests."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_available() -> bool:
    if not os.path.exists(CHROMIUM):
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


class WebuiServer:
    """`with WebuiServer(data_dir, extra_args) as server:` -> server.url once the page answers."""

    def __init__(self, data_dir, extra_args=(), timeout=180, ready_path="/", ready_status=200):
        self.data_dir = str(data_dir)
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path  # answers ready_status once the server is up ("/internal/ping" with --nowebui)
        self.ready_status = ready_status  # (401 where --api-auth guards every path)
        self.process = None
        self.log_path = os.path.join(self.data_dir, "webui.log")

    def __enter__(self):
        env = dict(os.environ)
        env.pop("SD_WEBUI_TEST_ARGV", None)
        env["SD_WEBUI_DATA_DIR"] = self.data_dir
        env["GRADIO_ANALYTICS_ENABLED"] = "False"
        self.log = open(self.log_path, "w")
        command = [sys.executable, "launch.py", "--skip-prepare-environment", "--port", str(self.port), "--data-dir", self.data_dir, *self.extra_args]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"web UI exited with {self.process.returncode}:\n{self.read_log()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == self.ready_status:
                        return self
            except urllib.error.HTTPError as e:
                if e.code == self.ready_status:
                    return self
                time.sleep(0.5)
            except OSError:
                time.sleep(0.5)
        log = self.read_log()
        self.__exit__(None, None, None)  # a server that never answered is not left running
        raise TimeoutError(f"web UI did not answer within {self.timeout}s:\n{log}")

    def read_log(self):
        try:
            with open(self.log_path) as file:
                return file.read()[-5000:]
        except OSError:
            return ""

    def __exit__(self, *exc):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_until_settings_are_current(page, timeout=60000):
    """Wait for the page's load-time refresh of the checkpoint, quicksettings and Settings tab: a setting changed
    before it lands is shown back as stored (the refresh answers a moment after the page appears)."""
    page.wait_for_function("window.settingsShownValues !== undefined", timeout=timeout)


def set_number(page, elem_id, value):
    """Type a value into a Gradio number box (a slider's or a Number's) and commit it."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def pick_option(page, elem_id, text):
    """Open a Gradio dropdown and choose the first option containing text."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option").filter(has_text=text).first.click()


def copy_into(src, dst_dir):
    os.makedirs(dst_dir, exist_ok=True)
    shutil.copy(src, dst_dir)
