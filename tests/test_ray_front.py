"""The real web UI started with `--api --workers ray --ray-workers 2`: the API answers as a single process does,
the images come from the workers and are saved by the front, and /sdapi/v1/memory shows each worker.

Marked `ray` (a web UI, a Ray cluster and two engines start): `python -m pytest -m ray tests/test_ray_front.py`.
"""
import os
import subprocess
import time

import pytest

pytest.importorskip("ray", reason='Ray is not installed: pip install ".[ray]"')

import requests  # noqa: E402

from tests.api_helpers import SMALL, data_dir_with_demo_model, image_from_b64, info_of  # noqa: E402
from tests.webui_server import WebuiServer  # noqa: E402

pytestmark = pytest.mark.ray

START_TIMEOUT_S = 900


def raylets():
    """How many Ray node processes run on this machine."""
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sum("/raylet" in line.split(" ")[0] for line in listing.splitlines())


def memory(server):
    return requests.get(server.url + "/sdapi/v1/memory", timeout=60).json()


def test_the_web_ui_and_api_are_a_front_for_two_ray_workers(tmp_path):
    data = data_dir_with_demo_model(tmp_path)
    raylets_before = raylets()
    flags = ["--api", "--workers", "ray", "--ray-workers", "2", "--ray-object-store-mb", "128"]
    with WebuiServer(data, flags, timeout=START_TIMEOUT_S) as server:
        deadline = time.time() + START_TIMEOUT_S
        while sum(w["status"] == "ready" for w in memory(server).get("workers") or []) < 2:
            assert time.time() < deadline, f"workers did not start:\n{server.read_log()}"
            time.sleep(1)

        response = requests.post(server.url + "/sdapi/v1/txt2img", json=dict(SMALL, seed=77, batch_size=2, save_images=True),
                                 timeout=600)
        assert response.status_code == 200, response.text
        assert info_of(response)["all_seeds"] == [77, 78]
        images = [image_from_b64(x) for x in response.json()["images"]]
        assert [im.size for im in images[-2:]] == [(64, 64), (64, 64)]

        saved = [name for _, _, names in os.walk(os.path.join(data, "outputs")) for name in names]
        assert sorted(n.split(".")[0].split("-", 1)[1] for n in saved if n.endswith(".png") and "grid" not in n) \
            == ["77", "78"], saved

        workers = memory(server)["workers"]
        assert sorted(w["name"] for w in workers) == ["worker-1", "worker-2"]
        assert all(w["checkpoint"] == "demo-shapes.safetensors" and w["memory"]["ram"]["used"] > 0 for w in workers)
        assert sum(w["jobs_done"] for w in workers) >= 1
        assert "ram" in memory(server)  # the front's own figures stay where A1111 clients read them

    deadline = time.time() + 120  # stopping the web UI stops the cluster it started
    while raylets() > raylets_before:
        assert time.time() < deadline, "the web UI left its Ray cluster running"
        time.sleep(1)
