"""The engine. Importing it lets extensions' bare imports of A1111's built-in extension modules (`import networks`)
find the engine's own modules (see modules/builtin_module_names.py)."""
from modules import builtin_module_names as _builtin_module_names

_builtin_module_names.install()
