"""modules.util, A1111's file and path helpers that extensions import (shared keeps the older names)."""
import os

from modules import shared, util


def test_listing_helpers_sort_naturally_and_skip_hidden(tmp_path):
    for name in ("img10.png", "img2.png", ".hidden.png", "Img1.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    assert [os.path.basename(f) for f in util.listfiles(str(tmp_path))] == ["Img1.png", "img2.png", "img10.png"]
    assert [os.path.basename(f) for f in util.walk_files(str(tmp_path), allowed_extensions=[".txt"])] == ["a.txt"]
    assert shared.walk_files is util.walk_files and shared.natural_sort_key is util.natural_sort_key


def test_truncate_path_is_relative_inside_the_base_only(tmp_path):
    assert util.truncate_path(str(tmp_path / "a" / "b.png"), str(tmp_path)) == os.path.join("a", "b.png")
    assert util.truncate_path("/elsewhere/b.png", str(tmp_path)) == "/elsewhere/b.png"


def test_mass_file_lister_answers_from_one_directory_read(tmp_path):
    (tmp_path / "Card.PNG").write_bytes(b"x")
    lister = util.MassFileLister()
    assert lister.exists(str(tmp_path / "Card.PNG"))
    assert not lister.exists(str(tmp_path / "other.png"))
    assert lister.mctime(str(tmp_path / "missing.png")) == (0, 0)
    (tmp_path / "new.png").write_bytes(b"y")
    assert not lister.exists(str(tmp_path / "new.png"))  # cached listing
    lister.update_file_entry(str(tmp_path / "new.png"))
    assert lister.exists(str(tmp_path / "new.png"))
    assert lister.find(str(tmp_path / "no-such-folder" / "x.png")) is None


def test_topological_sort_puts_dependencies_first_and_ignores_cycles_and_unknowns():
    assert util.topological_sort({"b": ["a"], "a": [], "c": ["b", "zzz"]}) == ["a", "b", "c"]
    assert sorted(util.topological_sort({"x": ["y"], "y": ["x"]})) == ["x", "y"]


def test_file_from_url_is_never_downloaded(tmp_path):
    import pytest
    from modules import modelloader
    with pytest.raises(modelloader.ModelFileError, match="does not download"):
        util.load_file_from_url("https://example.com/models/net.pth", model_dir=str(tmp_path))
    (tmp_path / "net.pth").write_bytes(b"weights")
    assert util.load_file_from_url("https://example.com/models/net.pth", model_dir=str(tmp_path)) == str(tmp_path / "net.pth")
    import hashlib
    assert util.compare_sha256(str(tmp_path / "net.pth"), hashlib.sha256(b"weights").hexdigest()[:10].upper())


def test_ldm_print_follows_the_setting(capsys, monkeypatch):
    monkeypatch.setitem(shared.opts.data, "hide_ldm_prints", True)
    util.ldm_print("noise")
    monkeypatch.setitem(shared.opts.data, "hide_ldm_prints", False)
    util.ldm_print("shown")
    assert capsys.readouterr().out == "shown\n"
