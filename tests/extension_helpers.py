"""Test helpers: build extension folders on disk and load them the way the web UI does."""
import os
import shutil
import textwrap

# The corpus sits in shared/ beside the checkout (as in CI's fresh clone).
CORPUS = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "extension-corpus"))


def write_extension(root, name, files):
    """Create extensions/<name>/ with `files` ({relative path: source text}); returns its path."""
    path = os.path.join(root, name)
    for rel, text in files.items():
        full = os.path.join(path, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf8") as f:
            f.write(textwrap.dedent(text))
    os.makedirs(path, exist_ok=True)
    return path


def copy_corpus_extension(root, name):
    """Copy one real extension from the shared corpus into `root` (a temporary extensions/ folder)."""
    dst = os.path.join(root, name)
    shutil.copytree(os.path.join(CORPUS, name), dst)
    return dst


class Reports:
    """Collects errors.report messages instead of only printing them."""

    def __init__(self):
        self.messages = []

    def __call__(self, message, *, exc_info=False):
        import sys
        import traceback
        detail = traceback.format_exc() if exc_info else ""
        self.messages.append(message + ("\n" + detail if detail else ""))
        print("*** (captured)", message, detail, file=sys.stderr)

    def matching(self, text):
        return [m for m in self.messages if text in m]


def install_loader(monkeypatch, extensions_root, builtin_root=None, include_root_scripts=False):
    """Point the loader at temporary folders and capture error reports; returns the Reports collector."""
    from modules import errors, extensions, scripts
    reports = Reports()
    monkeypatch.setattr(errors, "report", reports)
    monkeypatch.setattr(extensions, "extensions_dir", str(extensions_root))
    monkeypatch.setattr(extensions, "extensions_builtin_dir", str(builtin_root) if builtin_root else "")
    if not include_root_scripts:
        # Tests of the loader itself use only the extensions they build, not the repository's scripts/ folder.
        monkeypatch.setattr(scripts, "_root_dir", lambda: str(extensions_root) + "-no-root")
    return reports


def load_all():
    from modules import extensions, scripts
    extensions.list_extensions()
    scripts.load_scripts()
    return scripts


def unload_all():
    from modules import extensions, script_callbacks, scripts
    # Let extensions undo their monkeypatches (vectorscope restores KDiffusionSampler) before forgetting them.
    script_callbacks.script_unloaded_callback()
    scripts._clear_script_callbacks()
    scripts._forget_extension_modules()
    scripts.scripts_data.clear()
    scripts.postprocessing_scripts_data.clear()
    scripts.scripts_current = None
    extensions.extensions.clear()
    extensions.extension_paths.clear()
    extensions.loaded_extensions.clear()
    script_callbacks.ordered_callbacks_map.clear()
