"""Extras postprocessors chosen in settings, run inside txt2img/img2img as always-on scripts (A1111 module name)."""
from modules import errors, scripts, shared


class ScriptPostprocessingForMainUI(scripts.Script):
    """Wraps one ScriptPostprocessing so its controls appear in the main tabs and it runs on each image."""

    def __init__(self, script_postproc):
        self.script = script_postproc
        self.postprocessing_controls = None

    def title(self):
        return self.script.name

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        self.postprocessing_controls = self.script.ui()
        return list(self.postprocessing_controls.values())

    def postprocess_image(self, p, script_pp, *args):
        from modules import scripts_postprocessing
        args_dict = dict(zip(self.postprocessing_controls or {}, args))
        pp = scripts_postprocessing.PostprocessedImage(script_pp.image)
        pp.info = {}
        self.script.process(pp, **args_dict)
        p.extra_generation_params.update(pp.info)
        script_pp.image = pp.image


def create_auto_preprocessing_script_data():
    """ScriptClassData for each postprocessor named in opts.postprocessing_enable_in_main_ui."""
    res = []
    for name in shared.opts.postprocessing_enable_in_main_ui or []:
        script = next((x for x in scripts.postprocessing_scripts_data if getattr(x.script_class, "name", None) == name), None)
        if script is None:
            continue
        try:
            wrapped = ScriptPostprocessingForMainUI(script.script_class())
        except Exception:
            errors.report(f"Error creating postprocessing script {name} for the main UI", exc_info=True)
            continue
        res.append(scripts.ScriptClassData(script_class=lambda w=wrapped: w, path=script.path, basedir=script.basedir, module=script.module))
    return res
