"""The engine. Importing it lets extensions' bare imports of A1111's built-in extension modules (`import networks`)
find the engine's own modules (see modules/builtin_module_names.py), and switches Gradio's .pyi stub writer off
before anything imports gradio (see modules/gradio_stub_writer.py)."""
from modules import builtin_module_names as _builtin_module_names
from modules import gradio_stub_writer as _gradio_stub_writer

_builtin_module_names.install()
_gradio_stub_writer.install()
