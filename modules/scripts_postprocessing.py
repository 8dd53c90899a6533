"""Postprocessing scripts: the steps the Extras tab runs on each image (A1111: modules.scripts_postprocessing).

Scripts are subclasses of ScriptPostprocessing found in scripts/ folders (the script loader registers them in
`modules.scripts.postprocessing_scripts_data`). Building their Gradio controls is the Extras tab's job
(webui/tab_extras.py calls `create_script_ui` inside its layout); the engine only needs the control names.
"""
import os

from modules import errors, shared


class PostprocessedImageSharedInfo:
    target_width: int = None
    target_height: int = None


class PostprocessedImage:
    """One image moving through the postprocessing scripts, with the infotext fields they add."""

    def __init__(self, image):
        self.image = image
        self.info = {}
        self.shared = PostprocessedImageSharedInfo()
        self.extra_images = []
        self.nametags = []
        self.disable_processing = False
        self.caption = None

    def get_suffix(self, used_suffixes=None):
        """'-tag1-tag2' for file names, numbered when already used for another output of the same source."""
        used_suffixes = {} if used_suffixes is None else used_suffixes
        suffix = "-".join(self.nametags)
        if suffix:
            suffix = "-" + suffix
        if suffix not in used_suffixes:
            used_suffixes[suffix] = 1
            return suffix
        for i in range(1, 100):
            proposed_suffix = suffix + "-" + str(i)
            if proposed_suffix not in used_suffixes:
                used_suffixes[proposed_suffix] = 1
                return proposed_suffix
        return suffix

    def create_copy(self, new_image, *, nametags=None, disable_processing=False):
        pp = PostprocessedImage(new_image)
        pp.shared = self.shared
        pp.nametags = self.nametags.copy()
        pp.info = self.info.copy()
        pp.disable_processing = disable_processing
        if nametags is not None:
            pp.nametags += nametags
        return pp


class ScriptPostprocessing:
    filename = None
    controls = None
    args_from = None
    args_to = None

    order = 1000
    """scripts run in increasing order (Upscale 1000, GFPGAN 2000, CodeFormer 3000)"""

    name = None
    """the name shown in the UI and used in settings (postprocessing_operation_order, ...)"""

    group = None
    """the Gradio block holding the script's controls, once built"""

    def ui(self):
        """Create Gradio controls; return a dict {argument name: component} passed to process() by name."""
        pass

    def process(self, pp: PostprocessedImage, **args):
        """Change pp.image and add to pp.info; args are the values of the controls from ui()."""
        pass

    def process_firstpass(self, pp: PostprocessedImage, **args):
        """Runs for every script before any process(), e.g. to agree on the target size."""
        pass

    def image_changed(self):
        pass


def wrap_call(func, filename, funcname, *args, default=None, **kwargs):
    try:
        return func(*args, **kwargs)
    except Exception:
        errors.report(f"Error calling: {filename}/{funcname}", exc_info=True)
    return default


class ScriptPostprocessingRunner:
    def __init__(self):
        self.scripts = None
        self.ui_created = False

    def initialize_scripts(self, scripts_data):
        self.scripts = []
        for script_data in scripts_data:
            try:
                script: ScriptPostprocessing = script_data.script_class()
            except Exception:
                errors.report(f"Error creating postprocessing script {script_data.path}", exc_info=True)
                continue
            script.filename = script_data.path
            if script.name == "Simple Upscale":  # only for txt2img/img2img (postprocessing_enable_in_main_ui)
                continue
            self.scripts.append(script)

    def create_script_ui(self, script, inputs):
        """Build one script's controls (call inside a Gradio layout) and note where its values sit in `inputs`."""
        script.args_from = len(inputs)
        script.args_to = len(inputs)
        script.controls = wrap_call(script.ui, script.filename, "ui") or {}
        for control in script.controls.values():
            try:
                control.custom_script_source = os.path.basename(script.filename or "")
            except Exception:
                pass
        inputs += list(script.controls.values())
        script.args_to = len(inputs)

    def scripts_in_preferred_order(self):
        if self.scripts is None:
            from modules import scripts
            self.initialize_scripts(scripts.postprocessing_scripts_data)

        scripts_order = shared.opts.postprocessing_operation_order or []
        scripts_filter_out = set(shared.opts.postprocessing_disable_in_extras or [])

        def script_score(name):
            for i, possible_match in enumerate(scripts_order):
                if possible_match == name:
                    return i
            return len(self.scripts)

        filtered = [script for script in self.scripts if script.name not in scripts_filter_out]
        scores = {id(s): (script_score(s.name), s.order, s.name or "", i) for i, s in enumerate(filtered)}
        return sorted(filtered, key=lambda s: scores[id(s)])

    def _named_args(self, args):
        """[(script, kwargs)]: from a flat list of control values (the UI) or {script name: {arg: value}} (API)."""
        res = []
        for script in self.scripts_in_preferred_order():
            if isinstance(args, dict):
                if script.name not in args:
                    continue
                res.append((script, dict(args[script.name] or {})))
                continue
            if script.controls is None:
                continue
            script_args = list(args[script.args_from:script.args_to])
            res.append((script, {name: value for name, value in zip(script.controls, script_args)}))
        return res

    def run(self, pp: PostprocessedImage, args):
        """Run every script on pp (and on the extra images scripts create); extras end up in pp.extra_images."""
        scripts = self._named_args(args)
        for script, process_args in scripts:
            wrap_call(script.process_firstpass, script.filename, "process_firstpass", pp, **process_args)

        all_images = [pp]
        for script, process_args in scripts:
            if shared.state.skipped:
                break
            shared.state.job = script.name
            for single_image in all_images.copy():
                if not single_image.disable_processing:
                    script.process(single_image, **process_args)
                for extra_image in single_image.extra_images:
                    if not isinstance(extra_image, PostprocessedImage):
                        extra_image = single_image.create_copy(extra_image)
                    all_images.append(extra_image)
                single_image.extra_images.clear()
        pp.extra_images = all_images[1:]

    def create_args_for_run(self, scripts_args):
        """A1111 API helper: {script name: {arg: value}} -> what run() takes."""
        return dict(scripts_args)

    def image_changed(self):
        for script in self.scripts_in_preferred_order():
            wrap_call(script.image_changed, script.filename, "image_changed")
