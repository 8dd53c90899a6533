"""The Extensions tab in a real browser: under --listen, "Install from URL" is refused with a clear message;
locally, an extension installs from a git repository and is listed."""
import pathlib
import subprocess

import pytest

from tests.extension_helpers import write_extension
from tests.webui_server import WebuiServer, chromium_available, launch_browser

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")]


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(cwd or "."), "PATH": "/usr/bin:/bin"})


def make_bare_extension_repo(root):
    """A bare git repository holding a minimal extension (scripts/hello.py); returns its path."""
    work = write_extension(str(root), "sd-hello-ext", {"scripts/hello.py": "HELLO = 1\n"})
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    bare = str(root / "sd-hello-ext.git")
    git("clone", "-q", "--bare", work, bare, cwd=str(root))
    return bare


def open_install_tab(page, server):
    page.goto(server.url)
    page.get_by_role("tab", name="Extensions").click()
    page.get_by_role("tab", name="Install from URL").click()


def install(page, url):
    page.locator("#extensions_install_url textarea, #extensions_install_url input").first.fill(url)
    page.locator("#extensions_install_button").click()


def test_install_from_url_is_refused_under_listen(tmp_path):
    from playwright.sync_api import expect, sync_playwright
    repo = make_bare_extension_repo(tmp_path / "repos")
    data = tmp_path / "data"
    data.mkdir()
    with WebuiServer(data, ["--listen"]) as server, sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        open_install_tab(page, server)
        install(page, repo)
        result = page.locator("#extensions_install_result")
        expect(result).to_contain_text("Extension changes are disabled", timeout=30000)
        expect(result).to_contain_text("--enable-insecure-extension-access")
        assert not (data / "extensions" / "sd-hello-ext").exists()
        browser.close()


def test_install_from_a_local_git_repository_lists_it(tmp_path, shared_webui):
    """On the shared server: the extension stays installed but is never loaded (that takes a restart), so the other
    tests sharing it see no difference."""
    from playwright.sync_api import expect, sync_playwright
    repo = make_bare_extension_repo(tmp_path / "repos")
    data = pathlib.Path(shared_webui.data_dir)
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        open_install_tab(page, shared_webui)
        install(page, repo)
        expect(page.locator("#extensions_install_result")).to_contain_text("Installed into", timeout=60000)
        assert (data / "extensions" / "sd-hello-ext" / "scripts" / "hello.py").exists()
        page.get_by_role("tab", name="Installed").click()
        expect(page.locator("#extensions_installed_html")).to_contain_text("sd-hello-ext", timeout=15000)
        expect(page.locator("#extensions_enabled")).to_contain_text("sd-hello-ext")
        browser.close()
