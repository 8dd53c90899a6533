"""The Gradio-3 `/file=<path>` route extensions' javascript fetches: allowed folders only, everything else 403."""
import os

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modules import extensions, paths_internal
from webui import file_route


@pytest.fixture
def client(tmp_path, monkeypatch):
    ext_root = tmp_path / "extensions"
    (ext_root / "my-ext" / "tags").mkdir(parents=True)
    (ext_root / "my-ext" / "tags" / "tags.csv").write_text("cat,0\n")
    monkeypatch.setattr(extensions, "extensions_dir", str(ext_root))
    app = FastAPI()
    file_route.add_route(app)
    return TestClient(app), ext_root


def test_files_of_extensions_are_served_by_absolute_path_with_a_cache_buster(client):
    c, root = client
    response = c.get(f"/file={root}/my-ext/tags/tags.csv?1712345")
    assert response.status_code == 200 and response.text == "cat,0\n"
    assert c.head(f"/file={root}/my-ext/tags/tags.csv").status_code == 200


def test_relative_paths_resolve_against_the_webui_root_tmp_folder(client):
    c, _ = client
    tmp_dir = os.path.join(paths_internal.script_path, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    path = os.path.join(tmp_dir, "file-route-test.txt")
    with open(path, "w") as f:
        f.write("/some/base/path")
    try:
        assert c.get("/file=tmp/file-route-test.txt?99").text == "/some/base/path"
    finally:
        os.remove(path)


@pytest.mark.parametrize("path", ["/etc/passwd", "modules/shared.py", "tmp/../modules/shared.py",
                                  "webui/javascript/../app.py", "{root}/../outside.txt"])
def test_anything_outside_the_allowed_folders_is_forbidden(client, path, tmp_path):
    c, root = client
    (tmp_path / "outside.txt").write_text("secret")
    response = c.get("/file=" + path.format(root=root))
    assert response.status_code in (403, 404)  # 404: the client already resolved the ".." out of the URL
    assert "secret" not in response.text


def test_a_missing_file_in_an_allowed_folder_is_404(client):
    c, root = client
    assert c.get(f"/file={root}/my-ext/tags/none.csv").status_code == 404
    assert c.get(f"/file={root}/my-ext/tags").status_code == 404  # a folder is not a file


def test_dot_dot_and_outside_paths_are_403_not_served(client):
    from fastapi import HTTPException
    c, root = client
    assert c.get("/file=/etc/passwd").status_code == 403
    assert c.get("/file=modules/shared.py").status_code == 403
    for path in ("tmp/../modules/shared.py", f"{root}/my-ext/../../outside.txt", "webui/javascript/../app.py"):
        with pytest.raises(HTTPException) as e:
            file_route.resolve(path)
        assert e.value.status_code == 403
