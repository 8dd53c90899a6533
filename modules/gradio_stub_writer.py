"""Gradio's .pyi stub writer, switched off before gradio loads.

Every time a Gradio component class is defined, Gradio parses the class's source file and rewrites a `.pyi` type
stub beside it: its own ~80 components at every `import gradio` (3.5 s of a 7 s import on a 2-core machine, paid
by every start of the web UI, worker and test process), and a stray `.pyi` beside any extension file or module of
ours that subclasses a component. The stubs serve type checkers only (Gradio's wheel ships its own); nothing
reads them at run time, so the writer is replaced with one that writes nothing.
"""
import importlib.abc
import importlib.machinery
import sys

WRITER_MODULE = "gradio.component_meta"


def _write_no_stub(component_class, class_name, events):
    return None


def _switch_off(module):
    module.create_or_modify_pyi = _write_no_stub  # ComponentMeta looks the name up in its module at each class


class _SwitchOffOnImport(importlib.abc.MetaPathFinder):
    """Finds gradio.component_meta as usual and switches its writer off right after the module runs, before
    gradio's components (defined in modules imported after it) are created."""

    def find_spec(self, name, path, target=None):
        if name != WRITER_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            _switch_off(module)
        spec.loader.exec_module = exec_module
        return spec


def install():
    """Call before gradio is imported (importing `modules` does); if it already is, later classes write nothing."""
    if WRITER_MODULE in sys.modules:
        _switch_off(sys.modules[WRITER_MODULE])
    elif not any(isinstance(finder, _SwitchOffOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SwitchOffOnImport())
