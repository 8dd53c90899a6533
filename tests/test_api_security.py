"""The API exposed to other machines: --nowebui --listen with --api-auth (401 without credentials, on extension
routes too), restricted path settings, path traversal refused, nothing that installs or runs code, CORS, --api-log,
a body limit, --api-server-stop; and the start-up warning when the API is exposed without auth."""
import http.client
import os
import socket

import pytest
import requests

from tests.api_helpers import SMALL, DEMO_CHECKPOINT, data_dir_with_demo_model, info_of
from tests.extension_helpers import write_extension
from tests.test_api import PROBE_EXTENSION
from tests.webui_server import WebuiServer

AUTH = ("alice", "s3cret:with:colons")
ORIGIN = "http://allowed.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.path.isfile(DEMO_CHECKPOINT):
        pytest.skip("needs the demo checkpoint")
    data = data_dir_with_demo_model(tmp_path_factory.mktemp("api-exposed"))
    write_extension(os.path.join(data, "extensions"), "api-probe", PROBE_EXTENSION)
    args = ["--nowebui", "--listen", "--api-auth", f"bob:pw,{AUTH[0]}:{AUTH[1]}", "--api-log",
            "--cors-allow-origins", ORIGIN, "--api-server-stop"]
    with WebuiServer(data, args, timeout=400, ready_path="/openapi.json", ready_status=401) as running:
        running.data = data
        yield running


def test_no_credentials_or_wrong_ones_get_401_on_every_route(server):
    for path in ("/sdapi/v1/options", "/sdapi/v1/sd-models", "/api-probe/ping", "/docs", "/internal/progress"):
        response = requests.get(server.url + path, timeout=60)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Basic" and response.json()["detail"] == "Incorrect username or password"
    assert requests.get(server.url + "/sdapi/v1/options", auth=("alice", "wrong"), timeout=60).status_code == 401
    assert requests.get(server.url + "/sdapi/v1/options", auth=("mallory", AUTH[1]), timeout=60).status_code == 401
    response = requests.post(server.url + "/sdapi/v1/txt2img", json={**SMALL, "seed": 3}, timeout=600)
    assert response.status_code == 401
    assert requests.get(server.url + "/api-probe/ping", auth=AUTH, timeout=60).json() == {"probe": "pong"}
    assert info_of(requests.post(server.url + "/sdapi/v1/txt2img", json={**SMALL, "seed": 3}, auth=("bob", "pw"), timeout=600))["seed"] == 3


def test_path_settings_may_not_point_outside_the_data_folder(server):
    for value in ("/tmp/elsewhere", "../../outside", os.path.join(server.data, "..", "x")):
        response = requests.post(server.url + "/sdapi/v1/options", json={"outdir_samples": value}, auth=AUTH, timeout=60)
        assert response.status_code == 403 and "may not point outside the data folder" in response.json()["detail"], value
    inside = requests.post(server.url + "/sdapi/v1/options", json={"outdir_samples": "outputs/mine"}, auth=AUTH, timeout=60)
    assert inside.status_code == 200
    assert requests.get(server.url + "/sdapi/v1/options", auth=AUTH, timeout=60).json()["outdir_samples"] == "outputs/mine"
    requests.post(server.url + "/sdapi/v1/options", json={"outdir_samples": ""}, auth=AUTH, timeout=60)


TRAVERSALS = [
    ("/sdapi/v1/img2img", {**SMALL, "init_images": ["/etc/passwd"]}, 422),
    ("/sdapi/v1/img2img", {**SMALL, "init_images": ["file:///etc/passwd"]}, 422),
    ("/sdapi/v1/img2img", {**SMALL, "init_images": ["../../../../etc/passwd"]}, 422),
    ("/sdapi/v1/txt2img", {**SMALL, "hr_checkpoint_name": "../../../../etc/passwd", "enable_hr": True}, 400),
    ("/sdapi/v1/txt2img", {**SMALL, "override_settings": {"sd_model_checkpoint": "/etc/passwd"}}, 400),
    ("/sdapi/v1/txt2img", {**SMALL, "override_settings": {"outdir_txt2img_samples": "/etc"}, "save_images": True}, 403),
    ("/sdapi/v1/options", {"sd_vae": "../../../../etc/passwd"}, 400),
    ("/sdapi/v1/options", {"styles_file": "/etc/passwd"}, 422),
    ("/sdapi/v1/png-info", {"image": "/etc/passwd"}, 422),
    ("/sdapi/v1/extra-batch-images", {"imageList": [{"data": "/etc/passwd", "name": "../../etc/passwd"}]}, 422),
]


@pytest.mark.parametrize("path, payload, status", TRAVERSALS)
def test_path_traversal_is_refused(server, path, payload, status):
    response = requests.post(server.url + path, json=payload, auth=AUTH, timeout=600)
    assert response.status_code == status, response.text
    assert "root:" not in response.text


def test_raw_traversal_urls_find_nothing(server):
    token = requests.auth._basic_auth_str(*AUTH)
    for path in ("/sdapi/v1/../../../../etc/passwd", "/file=/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/internal/../../etc/passwd"):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.request("GET", path, headers={"Authorization": token})
        response = connection.getresponse()
        body = response.read().decode("utf8", "replace")
        assert response.status == 404 and "root:" not in body, path


def test_nothing_installs_extensions_or_runs_code(server):
    paths = requests.get(server.url + "/openapi.json", auth=AUTH, timeout=60).json()["paths"]
    assert not [p for p in paths if any(word in p for word in ("install", "exec", "run-code", "custom-code"))]
    assert list(paths["/sdapi/v1/extensions"]) == ["get"]
    assert requests.post(server.url + "/sdapi/v1/extensions", json={"url": "https://example.com/evil.git"}, auth=AUTH, timeout=60).status_code == 405
    scripts = requests.get(server.url + "/sdapi/v1/scripts", auth=AUTH, timeout=60).json()
    assert "custom code" not in scripts["txt2img"] + scripts["img2img"]


def test_cors_log_timing_and_body_limit(server):
    preflight = requests.options(server.url + "/sdapi/v1/txt2img", timeout=60, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ORIGIN
    other = requests.options(server.url + "/sdapi/v1/txt2img", timeout=60, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers
    response = requests.get(server.url + "/sdapi/v1/samplers", auth=AUTH, timeout=60)
    assert float(response.headers["x-process-time"]) >= 0
    assert "GET /sdapi/v1/samplers 127.0.0.1" in server.read_log()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        token = requests.auth._basic_auth_str(*AUTH)
        sock.sendall(f"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {10 * 1024 ** 3}\r\n\r\n{{".encode())
        answer = b""
        while b"MB" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and "larger than 256 MB" in answer


def test_server_stop_stops_the_server(server):
    assert requests.post(server.url + "/sdapi/v1/server-stop", auth=AUTH, timeout=60).json() == {}
    server.process.wait(timeout=60)
    assert server.process.returncode == 0


# ---------------------------------------------------------------------------------------------- the warning

@pytest.mark.parametrize("argv, warned", [
    (["--api", "--listen"], True),
    (["--nowebui", "--listen"], True),
    (["--api", "--share"], True),
    (["--api", "--server-name", "192.168.1.5"], True),
    (["--api", "--listen", "--api-auth", "a:b"], False),
    (["--api"], False),
    (["--nowebui"], False),
    (["--listen"], False),  # no API
])
def test_exposed_without_auth_warning(argv, warned):
    from modules import cmd_args
    from modules.api import server as api_server
    warning = api_server.exposure_warning(cmd_args.parser.parse_args(argv))
    assert (warning is not None) == warned
    if warned:
        assert "--api-auth" in warning and "anyone who can reach this port" in warning


def test_the_warning_is_printed_when_the_api_starts(monkeypatch, capsys):
    from fastapi import FastAPI

    from modules import shared
    from modules.api import server as api_server
    for flag, value in (("api", True), ("listen", True), ("api_auth", None), ("share", False), ("server_name", None)):
        monkeypatch.setattr(shared.cmd_opts, flag, value)
    app = FastAPI()
    api_server.create_api(app, sdapi=True)
    assert "Warning: the API is reachable from other machines (0.0.0.0)" in capsys.readouterr().err
    assert "/sdapi/v1/txt2img" in app.openapi()["paths"]
