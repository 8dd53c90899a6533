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
    # the runners held the unloaded scripts' instances: a later test generating through them would run those hooks
    scripts.scripts_txt2img = scripts.scripts_img2img = scripts.scripts_postproc = None
    extensions.extensions.clear()
    extensions.extension_paths.clear()
    extensions.loaded_extensions.clear()
    script_callbacks.ordered_callbacks_map.clear()


def build_tabs(stand_in_ids=()):
    """What the main UI does with scripts: before_ui, settings callbacks, then each tab's scripts section.

    `stand_in_ids` (txt2img ids; "txt2img" is replaced for img2img) get a placeholder Number each, for extensions
    that look up the real tab's fields by elem_id. Returns (demo, extension tabs).
    """
    from modules import gradio_compat, script_callbacks, scripts
    gradio_compat.apply()
    import gradio as gr
    from webui import script_runner_ui
    script_callbacks.before_ui_callback()
    script_callbacks.ui_settings_callback()
    with gr.Blocks() as demo:
        for runner, is_img2img in ((scripts.scripts_txt2img, False), (scripts.scripts_img2img, True)):
            tab = "img2img" if is_img2img else "txt2img"
            with gr.Tab(tab), script_runner_ui.tab_scope(runner):
                for elem_id in stand_in_ids:
                    gr.Number(value=1, label=elem_id, elem_id=elem_id.replace("txt2img", tab))
                script_runner_ui.create_script_ui(runner, is_img2img=is_img2img)
                if stand_in_ids:
                    gr.Button("Info", elem_id=f"{tab}_generation_info_button")
        tabs = script_callbacks.ui_tabs_callback()
    return demo, tabs


def classes_extensions_patch():
    """Classes real extensions monkeypatch (mov2mov replaces gradio's Component and BlockContext __init__ and our
    InputAccordion's); a sandbox puts them back when it closes, so later tests build pages with the originals."""
    import gradio
    from gradio import blocks
    from webui import ui_components
    return [gradio.components.Component, gradio.components.FormComponent, blocks.Block, blocks.BlockContext,
            ui_components.InputAccordion]


class ExtensionSandbox:
    """A temporary extensions/ folder the loader reads, and a clean restore of callbacks/options afterwards.

    `add_corpus(name)` / `add(name, files)` put extensions there; `load()` loads them as the web UI does
    (with the repository's own scripts/, e.g. the X/Y/Z plot) and returns the error-report collector.
    """

    def __init__(self, root, monkeypatch, include_root_scripts=True):
        from modules import script_callbacks, shared
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.reports = install_loader(monkeypatch, root, include_root_scripts=include_root_scripts)
        monkeypatch.setitem(shared.opts.data, "disabled_extensions", [])
        monkeypatch.setitem(shared.opts.data, "disable_all_extensions", "none")
        self._saved_callbacks = {k: list(v) for k, v in script_callbacks.callback_map.items()}
        self._saved_options = dict(shared.opts.data_labels)
        from modules import gradio_compat
        gradio_compat.apply()  # its own patches stay: saved below as part of the originals
        self._saved_classes = {cls: dict(vars(cls)) for cls in classes_extensions_patch()}

    def add_corpus(self, *names):
        for name in names:
            copy_corpus_extension(self.root, name)

    def add(self, name, files):
        return write_extension(self.root, name, files)

    def load(self):
        load_all()
        return self.reports

    def close(self):
        from modules import script_callbacks, shared
        unload_all()
        for k, v in self._saved_callbacks.items():
            script_callbacks.callback_map[k][:] = v
        script_callbacks.ordered_callbacks_map.clear()
        for key in list(shared.opts.data_labels):
            if key not in self._saved_options:
                del shared.opts.data_labels[key]
        for cls, saved in self._saved_classes.items():
            for name, value in list(vars(cls).items()):
                if name not in saved:
                    delattr(cls, name)
                elif saved[name] is not value:
                    setattr(cls, name, saved[name])


def script_by_title(title, runner=None):
    from modules import scripts
    runner = runner or scripts.scripts_txt2img
    return next(s for s in runner.scripts if s.title() == title)


def script_args_with(runner, overrides):
    """The runner's default script_args with {(script title, control index): value} applied."""
    from webui import script_runner_ui
    args = script_runner_ui.default_script_args(runner)
    for (title, index), value in overrides.items():
        script = script_by_title(title, runner)
        assert script.args_from + index < script.args_to, f"{title} has no control #{index}"
        args[script.args_from + index] = value
    return args


def txt2img(model, overrides=None, runner=None, **kwargs):
    """One real txt2img generation through process_images with the scripts of `runner` (default: txt2img's)."""
    from modules import processing, scripts
    runner = runner or scripts.scripts_txt2img
    params = dict(sd_model=model, prompt="a red circle", negative_prompt="", steps=3, cfg_scale=7, width=64, height=64,
                  seed=1234, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    p = processing.StableDiffusionProcessingTxt2Img(**params)
    p.scripts = runner
    p.script_args = script_args_with(runner, overrides or {})
    try:
        return processing.process_images(p)
    finally:
        p.close()
