"""Extension scripts are modules: registered in sys.modules under a stable name (A1111's file name), so classes
defined in them work with Gradio 6 component subclassing, pickle, inspect and dataclasses; a reload replaces them."""
import inspect
import pickle
import sys

import pytest

from modules import gradio_compat, script_loading, scripts, shared
from tests.extension_helpers import install_loader, load_all, unload_all, write_extension

# The shape of the script that failed in the wild: a ToolButton subclass defined in scripts/, used in ui().
AR_SCRIPT = '''
from __future__ import annotations

import dataclasses

import gradio as gr
from modules import scripts
from modules.ui_components import ToolButton


class ARButton(ToolButton):
    def __init__(self, ar=1.0, **kwargs):
        super().__init__(**kwargs)
        self.ar = ar


@dataclasses.dataclass
class Preset:
    name: str
    ratio: float = 1.0


class AspectRatio(scripts.Script):
    def title(self):
        return "Aspect ratio buttons"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        self.button = ARButton(ar=1.5, value="3:2")
        return [gr.Checkbox(False, label="Lock")]
'''


@pytest.fixture
def ext_root(tmp_path, monkeypatch):
    gradio_compat.apply()
    root = tmp_path / "extensions"
    root.mkdir()
    reports = install_loader(monkeypatch, root)
    monkeypatch.setitem(shared.opts.data, "disabled_extensions", [])
    monkeypatch.setitem(shared.opts.data, "disable_all_extensions", "none")
    yield root, reports
    unload_all()


def loaded_module(filename):
    return next(d.module for d in scripts.scripts_data if d.path.endswith(filename))


def test_classes_in_an_extension_script_work_with_gradio_pickle_inspect_and_dataclasses(ext_root):
    from tests.extension_helpers import build_tabs
    root, reports = ext_root
    write_extension(root, "aspect-ratio", {"scripts/ar.py": AR_SCRIPT})
    load_all()
    build_tabs()
    assert reports.messages == []
    script = next(s for s in scripts.scripts_txt2img.scripts if s.title() == "Aspect ratio buttons")
    assert script.button.ar == 1.5 and [c.label for c in script.controls] == ["Lock"]

    module = loaded_module("ar.py")
    assert module.__name__ == "ar.py" and sys.modules["ar.py"] is module  # A1111's name, findable
    assert inspect.getfile(module.ARButton) == str(root / "aspect-ratio" / "scripts" / "ar.py")
    assert "class ARButton(ToolButton)" in inspect.getsource(module.ARButton)
    assert not (root / "aspect-ratio" / "scripts" / "ar.pyi").exists()  # Gradio's stub writer leaves the folder alone
    preset = module.Preset("wide", 1.78)
    assert pickle.loads(pickle.dumps(preset)) == preset
    assert [f.name for f in module.Preset.__dataclass_fields__.values()] == ["name", "ratio"]


def test_reload_replaces_the_registered_module_and_unload_forgets_it(ext_root):
    root, _ = ext_root
    write_extension(root, "aspect-ratio", {"scripts/ar.py": AR_SCRIPT})
    load_all()
    first = sys.modules["ar.py"]
    load_all()
    second = sys.modules["ar.py"]
    assert second is not first and loaded_module("ar.py") is second
    unload_all()
    assert "ar.py" not in sys.modules


def test_two_extensions_with_the_same_script_name_get_distinct_stable_names(ext_root):
    root, reports = ext_root
    body = AR_SCRIPT.replace("Aspect ratio buttons", "{title}")
    write_extension(root, "first", {"scripts/ar.py": body.format(title="First")})
    write_extension(root, "second-one", {"scripts/ar.py": body.format(title="Second")})
    load_all()
    names = sorted(d.module.__name__ for d in scripts.scripts_data if d.path.endswith("ar.py"))
    assert names == ["ar.py", "ar__second_one.py"]
    for name in names:
        preset = sys.modules[name].Preset("x")
        assert type(pickle.loads(pickle.dumps(preset))) is sys.modules[name].Preset
    assert reports.messages == []
    load_all()
    assert sorted(d.module.__name__ for d in scripts.scripts_data if d.path.endswith("ar.py")) == names
    assert script_loading.module_names  # registered while loaded
