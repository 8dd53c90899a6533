"""Where each script's arguments sit in `script_args`, carried from the front to the workers.

The positions (`args_from`/`args_to`) are set when the front builds the scripts' controls; a worker builds no UI,
so it takes them from the job. Front and workers load the same script files in the same order, so a script is
matched by its file and class; a worker missing one of the front's scripts is an error that names it.
"""
import os

from modules import paths_internal, scripts


def _file_key(filename):
    """A script file's path below the data or install folder: the same on every machine with the same install."""
    path = os.path.realpath(filename or "")
    for root in (paths_internal.data_path, paths_internal.script_path):
        if path.startswith(root + os.sep):
            return os.path.relpath(path, root)
    return path


def _runners():
    return {"txt2img": scripts.scripts_txt2img, "img2img": scripts.scripts_img2img}


def layout_of_runners():
    """{runner name: [(file, class name, args_from, args_to), ...]} of the front's script runners."""
    layout = {}
    for name, runner in _runners().items():
        if runner is not None:
            layout[name] = [(_file_key(s.filename), type(s).__name__, s.args_from, s.args_to) for s in runner.scripts]
    return layout


def apply(layout):
    """Give this process's scripts the front's argument positions."""
    for name, entries in (layout or {}).items():
        runner = _runners().get(name)
        if runner is None:
            continue
        by_key = {(_file_key(s.filename), type(s).__name__): s for s in runner.scripts}
        for filename, class_name, args_from, args_to in entries:
            script = by_key.get((filename, class_name))
            if script is None:
                raise RuntimeError(f"script {class_name} ({filename}) of the front is not loaded on this worker; "
                                   f"install the same extensions on every machine")
            script.args_from, script.args_to = args_from, args_to
