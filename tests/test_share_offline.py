"""--share on a closed network: the app says so plainly and keeps serving locally."""
import time
import urllib.request

from tests.webui_server import WebuiServer


def test_share_without_network_keeps_serving_locally(tmp_path):
    with WebuiServer(tmp_path, extra_args=["--share"]) as server:
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.status == 200
        deadline = time.time() + 60
        while "Could not create a public --share link" not in server.read_log() and time.time() < deadline:
            time.sleep(0.5)
        assert "the UI is served locally only" in server.read_log()
