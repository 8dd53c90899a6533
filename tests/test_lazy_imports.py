"""Heavy packages extensions import at load time are imported when first used (modules.lazy_imports)."""
import sys

from modules import lazy_imports


def test_a_lazy_package_is_imported_on_first_use_only(tmp_path, monkeypatch):
    package = tmp_path / "heavy_pkg_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("import os\nos.environ['HEAVY_PKG_IMPORTED'] = '1'\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("HEAVY_PKG_IMPORTED", raising=False)
    try:
        lazy_imports.install(("heavy_pkg_for_test", "no_such_package_at_all"))
        import heavy_pkg_for_test
        assert "HEAVY_PKG_IMPORTED" not in __import__("os").environ  # `import` alone costs nothing
        assert "no_such_package_at_all" not in sys.modules
        assert heavy_pkg_for_test.VALUE == 42
        assert __import__("os").environ["HEAVY_PKG_IMPORTED"] == "1"
        assert sys.modules["heavy_pkg_for_test"].VALUE == 42  # the real module replaced the stand-in
    finally:
        sys.modules.pop("heavy_pkg_for_test", None)
