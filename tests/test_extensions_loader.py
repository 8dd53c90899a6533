"""The extension loader: discovery, enable/disable, metadata.ini ordering and requirements, install.py, preload.py, assets."""
import argparse
import json
import os

import pytest

from modules import extensions, script_callbacks, script_loading, scripts, shared
from tests.extension_helpers import install_loader, load_all, unload_all, write_extension


@pytest.fixture
def ext_root(tmp_path, monkeypatch):
    root = tmp_path / "extensions"
    root.mkdir()
    reports = install_loader(monkeypatch, root)
    monkeypatch.setitem(shared.opts.data, "disabled_extensions", [])
    monkeypatch.setitem(shared.opts.data, "disable_all_extensions", "none")
    yield root, reports
    unload_all()


def script_source(title, body=""):
    return f"""
        from modules import scripts
        class S(scripts.Script):
            def title(self):
                return {title!r}
            def show(self, is_img2img):
                return scripts.AlwaysVisible
        {body}
    """


def titles():
    return [s.title() for s in scripts.scripts_txt2img.scripts]


def test_extensions_are_found_sorted_and_their_scripts_load(ext_root):
    root, reports = ext_root
    write_extension(root, "zeta", {"scripts/z.py": script_source("Zeta")})
    write_extension(root, "alpha", {"scripts/a.py": script_source("Alpha"), "scripts/notes.txt": "not python"})
    (root / "a-file.txt").write_text("not an extension")
    load_all()
    assert [e.name for e in extensions.extensions] == ["alpha", "zeta"]
    assert titles() == ["Alpha", "Zeta"]
    assert reports.messages == []


def test_disabled_extension_and_disable_all_settings(ext_root, monkeypatch):
    root, _ = ext_root
    write_extension(root, "one", {"scripts/a.py": script_source("One")})
    write_extension(root, "two", {"scripts/b.py": script_source("Two")})
    monkeypatch.setitem(shared.opts.data, "disabled_extensions", ["two"])
    load_all()
    assert titles() == ["One"]
    assert [e.enabled for e in extensions.extensions] == [True, False]

    monkeypatch.setitem(shared.opts.data, "disable_all_extensions", "all")
    load_all()
    assert titles() == []

    monkeypatch.setitem(shared.opts.data, "disable_all_extensions", "none")
    monkeypatch.setattr(shared.cmd_opts, "disable_extra_extensions", True)
    load_all()
    assert titles() == []  # only built-in extensions would load


def test_builtin_extensions_survive_disable_extra(tmp_path, monkeypatch):
    root, builtin = tmp_path / "extensions", tmp_path / "extensions-builtin"
    root.mkdir()
    reports = install_loader(monkeypatch, root, builtin)
    write_extension(builtin, "core", {"scripts/c.py": script_source("Core")})
    write_extension(root, "extra", {"scripts/e.py": script_source("Extra")})
    monkeypatch.setattr(shared.cmd_opts, "disable_extra_extensions", True)
    try:
        load_all()
        assert titles() == ["Core"]
        assert extensions.extensions[0].is_builtin
        assert reports.messages == []
    finally:
        unload_all()


def test_basedir_and_sibling_imports_during_import(ext_root):
    root, reports = ext_root
    write_extension(root, "pkgext", {
        "lib_pkg/__init__.py": "VALUE = 41\n",
        "scripts/helpers/__init__.py": "",
        "scripts/helpers/util.py": "def plus_one(x):\n    return x + 1\n",
        "scripts/main.py": script_source("Pkg", """
        from lib_pkg import VALUE
        from scripts.helpers.util import plus_one
        ANSWER = plus_one(VALUE)
        BASEDIR = scripts.basedir()
        """),
    })
    load_all()
    module = scripts.scripts_data[0].module
    assert module.ANSWER == 42
    assert module.BASEDIR == str(root / "pkgext")
    assert scripts.basedir() != str(root / "pkgext")  # only while importing
    assert reports.messages == []


def test_a_script_that_fails_to_import_is_reported_and_others_load(ext_root):
    root, reports = ext_root
    write_extension(root, "broken", {"scripts/bad.py": "raise RuntimeError('import failure')\n"})
    write_extension(root, "good", {"scripts/good.py": script_source("Good")})
    load_all()
    assert titles() == ["Good"]
    assert len(reports.matching("Error loading script: bad.py")) == 1
    assert "import failure" in reports.matching("Error loading script: bad.py")[0]


def test_a_script_needing_an_uninstalled_package_names_the_extension_and_the_package(ext_root):
    root, reports = ext_root
    write_extension(root, "needs-pkg", {"scripts/uses.py": "import no_such_package_xyz.sub\n"})
    load_all()
    [message] = reports.matching("Error loading script: uses.py")
    assert "extension needs-pkg needs the Python package 'no_such_package_xyz', which is not installed" in message


def test_metadata_before_after_orders_scripts(ext_root):
    root, reports = ext_root
    write_extension(root, "aaa", {"scripts/a.py": script_source("A")})
    write_extension(root, "bbb", {"scripts/b.py": script_source("B")})
    write_extension(root, "ccc", {
        "scripts/c.py": script_source("C"),
        "metadata.ini": "[scripts/c.py]\nBefore = aaa\n",
    })
    write_extension(root, "ddd", {
        "scripts/d.py": script_source("D"),
        "metadata.ini": "[Extension]\nRequires = missing-ext\n[scripts]\nAfter = bbb/b.py\n",
    })
    load_all()
    order = titles()
    assert order.index("C") < order.index("A")
    assert order.index("D") > order.index("B")
    assert reports.matching('Extension "ddd" requires "missing-ext" which is not installed.')


def test_metadata_name_and_duplicate_canonical_names(ext_root):
    root, reports = ext_root
    write_extension(root, "first", {"metadata.ini": "[Extension]\nName = Shared-Name\n"})
    write_extension(root, "second", {"metadata.ini": "[Extension]\nName = shared-name\n"})
    load_all()
    assert [e.name for e in extensions.extensions] == ["first"]
    assert extensions.extensions[0].canonical_name == "shared-name"
    assert reports.matching('Duplicate canonical name "shared-name"')


def test_find_extension_and_callback_names_carry_the_extension(ext_root):
    root, _ = ext_root
    write_extension(root, "MyExt", {"scripts/s.py": """
        from modules import script_callbacks
        script_callbacks.on_model_loaded(lambda m: None)
    """})
    load_all()
    assert extensions.find_extension(str(root / "MyExt" / "scripts" / "s.py")).name == "MyExt"
    names = [c.name for c in script_callbacks.callback_map["callbacks_model_loaded"]]
    assert "myext/s.py/model_loaded" in names


def test_reload_forgets_callbacks_of_scripts_but_keeps_engine_ones(ext_root):
    root, _ = ext_root
    write_extension(root, "cb", {"scripts/s.py": """
        from modules import script_callbacks
        script_callbacks.on_model_loaded(lambda m: None, name="ext")
    """})
    script_callbacks.on_model_loaded(lambda m: None, name="engine")
    try:
        load_all()
        load_all()
        names = [c.name for c in script_callbacks.callback_map["callbacks_model_loaded"]]
        assert names.count("cb/s.py/model_loaded/ext") == 1
        assert any(n.endswith("/engine") for n in names)
    finally:
        script_callbacks.callback_map["callbacks_model_loaded"][:] = [
            c for c in script_callbacks.callback_map["callbacks_model_loaded"] if not c.name.endswith("/engine")]


def test_javascript_css_and_localizations_are_collected_in_order(ext_root, monkeypatch):
    root, _ = ext_root
    write_extension(root, "a-ext", {
        "javascript/b.js": "", "javascript/_a.js": "", "javascript/m.mjs": "", "javascript/readme.md": "",
        "style.css": "body{}", "localizations/fr.json": json.dumps({"Generate": "Générer"}),
    })
    write_extension(root, "b-ext", {"javascript/a.js": "", "localizations/fr.json": json.dumps({"Seed": "Graine"})})
    load_all()
    js = [os.path.relpath(p, root) for p, _ in extensions.javascript_files()]
    assert js == ["a-ext/javascript/_a.js", "a-ext/javascript/b.js", "b-ext/javascript/a.js", "a-ext/javascript/m.mjs"]
    assert [m for _, m in extensions.javascript_files()] == [False, False, False, True]
    assert [os.path.relpath(p, root) for p in extensions.css_files()] == ["a-ext/style.css"]
    monkeypatch.setitem(shared.opts.data, "localization", "fr")
    js_paths, css_paths, localization = extensions.collect_ui_assets()
    assert localization == {"Generate": "Générer", "Seed": "Graine"}
    assert len(js_paths) == 4 and len(css_paths) == 1


def test_install_py_runs_in_a_subprocess_with_the_repo_importable(ext_root, tmp_path):
    root, reports = ext_root
    marker = tmp_path / "installed.txt"
    write_extension(root, "inst", {"install.py": f"""
        import launch
        assert launch.is_installed("numpy")
        with open({str(marker)!r}, "w") as f:
            f.write("ok")
        print("install ran")
    """})
    write_extension(root, "failing", {"install.py": "raise SystemExit(3)\n"})
    write_extension(root, "disabled", {"install.py": f"open({str(tmp_path / 'nope.txt')!r}, 'w')\n"})
    settings = tmp_path / "config.json"
    settings.write_text(json.dumps({"disabled_extensions": ["disabled"]}))
    extensions.run_extensions_installers(str(settings))
    assert marker.read_text() == "ok"
    assert not (tmp_path / "nope.txt").exists()
    failing = reports.matching("Error running install.py for extension")
    assert len(failing) == 1 and "failing" in failing[0] and "Error code: 3" in failing[0]


def test_preload_adds_flags_and_a_broken_preload_is_reported(ext_root):
    root, reports = ext_root
    write_extension(root, "flags", {"preload.py": """
        def preload(parser):
            parser.add_argument("--my-ext-dir", type=str, default="x")
    """})
    write_extension(root, "badpre", {"preload.py": "def preload(parser):\n    raise ValueError('bad preload')\n"})
    parser = argparse.ArgumentParser()
    script_loading.preload_extensions(str(root), parser)
    assert parser.parse_args(["--my-ext-dir", "y"]).my_ext_dir == "y"
    assert reports.matching("Error running preload() for")
