"""The Script API and the runners that drive scripts during processing (A1111: modules.scripts).

A script is a class deriving from `Script` found in a `scripts/*.py` file of the repository or of an extension.
`show()` decides whether it is hidden, selectable in the Script dropdown, or always on (`AlwaysVisible`). The
processing pipeline calls the runner's hook dispatchers (`process`, `process_batch`, `postprocess_image`, ...);
each dispatcher calls only the always-on scripts that override the hook, each call isolated so a failing script
is reported by file name and generation goes on. Building the gradio UI of a runner lives in
`webui/script_runner_ui.py`; this module never imports gradio.
"""
import contextlib
import dataclasses
import inspect
import os
import re
import sys
from collections import namedtuple

from modules import errors, script_callbacks, script_loading, paths_internal, util
from modules.script_loading import ScriptFile  # noqa: F401  (A1111 exposes it here)

AlwaysVisible = object()


# ---------------------------------------------------------------------------------------------- hook argument objects

class MaskBlendArgs:
    def __init__(self, current_latent, nmask, init_latent, mask, blended_latent, denoiser=None, sigma=None):
        self.current_latent = current_latent
        self.nmask = nmask
        self.init_latent = init_latent
        self.mask = mask
        self.blended_latent = blended_latent
        self.denoiser = denoiser
        self.is_final_blend = denoiser is None
        self.sigma = sigma


class PostSampleArgs:
    def __init__(self, samples):
        self.samples = samples


class PostprocessImageArgs:
    def __init__(self, image):
        self.image = image


class PostProcessMaskOverlayArgs:
    def __init__(self, index, mask_for_overlay, overlay_image):
        self.index = index
        self.mask_for_overlay = mask_for_overlay
        self.overlay_image = overlay_image


class PostprocessBatchListArgs:
    def __init__(self, images):
        self.images = images


@dataclasses.dataclass
class OnComponent:
    component: object


# ---------------------------------------------------------------------------------------------- the Script base class

class Script:
    name = None
    """Lowercased, sanitized title; set by the runner."""

    section = None
    """Where an always-on script's UI goes (None: the default scripts section)."""

    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname = None
    group = None
    create_group = True
    infotext_fields = None
    """List of (gradio component, "Infotext key" or callable(params) -> value) used when pasting infotext."""

    paste_field_names = None
    api_info = None
    on_before_component_elem_id = None
    on_after_component_elem_id = None
    setup_for_ui_only = False
    controls = None

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        """Create gradio components; return those whose values become this script's *args."""
        pass

    def show(self, is_img2img):
        """False: hidden; True: in the Script dropdown; AlwaysVisible: always on."""
        return True

    def run(self, p, *args):
        """Selectable scripts: do the job and return a Processed."""
        pass

    def setup(self, p, *args):
        pass

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def before_process_batch(self, p, *args, **kwargs):
        pass

    def after_extra_networks_activate(self, p, *args, **kwargs):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass

    def process_before_every_sampling(self, p, *args, **kwargs):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def postprocess_batch(self, p, *args, **kwargs):
        pass

    def postprocess_batch_list(self, p, pp: PostprocessBatchListArgs, *args, **kwargs):
        pass

    def on_mask_blend(self, p, mba: MaskBlendArgs, *args):
        pass

    def post_sample(self, p, ps: PostSampleArgs, *args):
        pass

    def postprocess_image(self, p, pp: PostprocessImageArgs, *args):
        pass

    def postprocess_maskoverlay(self, p, ppmo: PostProcessMaskOverlayArgs, *args):
        pass

    def postprocess_image_after_composite(self, p, pp: PostprocessImageArgs, *args):
        pass

    def before_component(self, component, **kwargs):
        pass

    def after_component(self, component, **kwargs):
        pass

    def on_before_component(self, callback, *, elem_id):
        """Call callback(OnComponent) just before the component with this elem_id is created."""
        if self.on_before_component_elem_id is None:
            self.on_before_component_elem_id = []
        self.on_before_component_elem_id.append((elem_id, callback))

    def on_after_component(self, callback, *, elem_id):
        """Call callback(OnComponent) just after the component with this elem_id is created."""
        if self.on_after_component_elem_id is None:
            self.on_after_component_elem_id = []
        self.on_after_component_elem_id.append((elem_id, callback))

    def describe(self):
        return ""

    def elem_id(self, item_id):
        """A stable elem_id for one of this script's components: script_[tab_]<title>_<item_id>."""
        need_tabname = self.show(True) == self.show(False)
        tabkind = "img2img" if self.is_img2img else "txt2img"
        tabname = f"{tabkind}_" if need_tabname else ""
        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"script_{tabname}{title}_{item_id}"

    def before_hr(self, p, *args):
        pass


class ScriptBuiltinUI(Script):
    """Built-in parts of the main UI written as scripts: always on, ids without the script_ prefix."""
    setup_for_ui_only = True

    def elem_id(self, item_id):
        need_tabname = self.show(True) == self.show(False)
        tabname = (("img2img" if self.is_img2img else "txt2img") + "_") if need_tabname else ""
        return f"{tabname}{item_id}"

    def show(self, is_img2img):
        return AlwaysVisible


# ---------------------------------------------------------------------------------------------- discovery and loading

current_basedir = paths_internal.script_path


def basedir():
    """The folder of the extension (or the repository) whose script is being imported right now."""
    return current_basedir


ScriptClassData = namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])

scripts_data = []
postprocessing_scripts_data = []

ScriptWithDependencies = namedtuple("ScriptWithDependencies", ["script_canonical_name", "file", "requires", "load_before", "load_after"])


def _root_dir():
    return paths_internal.script_path


def list_scripts(scriptdirname, extension, *, include_extensions=True):
    """Files of the repository's `scriptdirname` (sorted), then of each active extension, ordered by metadata.ini."""
    from modules import extensions

    scripts = {}
    loaded_extensions = {ext.canonical_name: ext for ext in extensions.active()}
    loaded_extensions_scripts = {ext.canonical_name: [] for ext in extensions.active()}

    root_dir = os.path.join(_root_dir(), scriptdirname)
    if os.path.isdir(root_dir):
        for filename in sorted(os.listdir(root_dir)):
            path = os.path.join(root_dir, filename)
            if os.path.splitext(filename)[1].lower() != extension or not os.path.isfile(path):
                continue
            name = "builtin/" + filename
            scripts[name] = ScriptWithDependencies(name, ScriptFile(_root_dir(), filename, path), [], [], [])

    if include_extensions:
        for ext in extensions.active():
            for script_file in ext.list_files(scriptdirname, extension):
                name = ("builtin/" if ext.is_builtin else "") + ext.canonical_name + "/" + script_file.filename
                relative_path = scriptdirname + "/" + script_file.filename
                script = ScriptWithDependencies(
                    name, script_file,
                    requires=ext.metadata.get_script_requirements("Requires", relative_path, scriptdirname),
                    load_before=ext.metadata.get_script_requirements("Before", relative_path, scriptdirname),
                    load_after=ext.metadata.get_script_requirements("After", relative_path, scriptdirname),
                )
                scripts[name] = script
                loaded_extensions_scripts[ext.canonical_name].append(script)

    for name, script in scripts.items():
        # "Before X" is "X after me"; X may be one script or a whole extension.
        for load_before in script.load_before:
            other = scripts.get(load_before)
            if other:
                other.load_after.append(name)
            for other in loaded_extensions_scripts.get(load_before, []):
                other.load_after.append(name)
        # "After <extension>" means after every script of that extension.
        for load_after in list(script.load_after):
            if load_after not in scripts and load_after in loaded_extensions_scripts:
                script.load_after.remove(load_after)
                script.load_after.extend(s.script_canonical_name for s in loaded_extensions_scripts[load_after])

    dependencies = {}
    for name, script in scripts.items():
        for required in script.requires:
            if required not in scripts and required not in loaded_extensions:
                errors.report(f'Script "{name}" requires "{required}" to be loaded, but it is not.', exc_info=False)
        dependencies[name] = script.load_after

    return [scripts[name].file for name in util.topological_sort(dependencies)]


def list_files_with_name(filename):
    """`filename` in the repository root, then in each active extension's root, where it exists."""
    from modules import extensions
    res = []
    for dirpath in [_root_dir()] + extensions.get_extension_dirs():
        path = os.path.join(dirpath, filename)
        if os.path.isfile(path):
            res.append(path)
    return res


def _postprocessing_base():
    from modules import scripts_postprocessing
    return scripts_postprocessing.ScriptPostprocessing


def register_scripts_from_module(module, scriptfile):
    pp_base = _postprocessing_base()
    bases = {Script, ScriptBuiltinUI, pp_base}
    for obj in list(module.__dict__.values()):
        if not inspect.isclass(obj) or obj in bases:
            continue
        if issubclass(obj, Script):
            scripts_data.append(ScriptClassData(obj, scriptfile.path, scriptfile.basedir, module))
        elif issubclass(obj, pp_base):
            postprocessing_scripts_data.append(ScriptClassData(obj, scriptfile.path, scriptfile.basedir, module))


def _forget_extension_modules():
    """Drop cached modules imported from extension folders so a reload executes their current code."""
    from modules import extensions
    dirs = extensions.get_extension_dirs()
    # A module is matched by its path as imported (or the folder's real path), without resolving the paths of the
    # thousands of other loaded modules (that costs a noticeable part of a second at every start).
    roots = tuple({os.path.abspath(p) + os.sep for p in dirs} | {os.path.realpath(p) + os.sep for p in dirs})
    if not roots:
        return
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and path.startswith(roots):
            del sys.modules[name]


def _clear_script_callbacks():
    """Forget callbacks registered by scripts and extensions; those registered by the engine itself stay."""
    from modules import extensions
    root_scripts = os.path.join(_root_dir(), "scripts") + os.sep
    for callbacks in script_callbacks.callback_map.values():
        callbacks[:] = [c for c in callbacks
                        if not (extensions.find_extension(c.script) or str(c.script).startswith(root_scripts))]
    script_callbacks.ordered_callbacks_map.clear()


def _missing_package_hint(error, scriptfile):
    """For a script that imports a package nobody installed: which extension needs which package, by name."""
    name = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if not name or name.split(".")[0] in ("modules", "webui", "scripts", "ldm", "sgm", "k_diffusion"):
        return ""
    from modules import extensions
    ext = extensions.find_extension(scriptfile.path)
    who = f"extension {ext.name}" if ext is not None else scriptfile.filename
    return f": {who} needs the Python package '{name.split('.')[0]}', which is not installed (pip install it into this environment)"


def load_scripts():
    """Import every script file (repository scripts/ then extensions'), register their classes, build the runners."""
    global current_basedir, scripts_txt2img, scripts_img2img, scripts_postproc

    from modules import lazy_imports, transformers_compat
    transformers_compat.apply()  # old tokenizer helpers extensions call, before any of their code runs
    lazy_imports.install()  # heavy packages extensions import but seldom use load on first use

    scripts_data.clear()
    postprocessing_scripts_data.clear()
    _clear_script_callbacks()
    _forget_extension_modules()
    script_loading.unregister_all()

    scripts_list = list_scripts("scripts", ".py") + list_scripts("modules/processing_scripts", ".py", include_extensions=False)

    for scriptfile in scripts_list:
        try:
            with script_loading.syspath_prefix(scriptfile.basedir):
                current_basedir = scriptfile.basedir
                module = script_loading.load_module(scriptfile.path)
                register_scripts_from_module(module, scriptfile)
        except Exception as e:
            errors.report(f"Error loading script: {scriptfile.filename} ({scriptfile.path}){_missing_package_hint(e, scriptfile)}",
                          exc_info=True)
        finally:
            current_basedir = paths_internal.script_path

    scripts_txt2img = ScriptRunner()
    scripts_img2img = ScriptRunner()
    scripts_txt2img.initialize_scripts(is_img2img=False)
    scripts_img2img.initialize_scripts(is_img2img=True)
    scripts_postproc = _create_postprocessing_runner()


def _create_postprocessing_runner():
    from modules import scripts_postprocessing
    return scripts_postprocessing.ScriptPostprocessingRunner()


def reload_scripts():
    """Tell scripts they are being unloaded, then load them afresh."""
    script_callbacks.script_unloaded_callback()
    load_scripts()


def wrap_call(func, filename, funcname, *args, default=None, **kwargs):
    try:
        return func(*args, **kwargs)
    except Exception:
        errors.report(f"Error calling: {filename}/{funcname}", exc_info=True)
    return default


# ---------------------------------------------------------------------------------------------- the runner

ui_builder = None
"""The module that builds a runner's gradio controls (webui/script_runner_ui.py sets itself here on import)."""


def _ui_builder():
    if ui_builder is None:
        raise RuntimeError("A script runner's controls are built by the web UI, which is not loaded (no webui.script_runner_ui)")
    return ui_builder


def _script_display_title(script):
    return wrap_call(script.title, script.filename, "title", default=f"{os.path.basename(script.filename or '?')} [error]")


class ScriptRunner:
    def __init__(self):
        self.scripts = []
        self.selectable_scripts = []
        self.alwayson_scripts = []
        self.titles = []
        self.title_map = {}
        self.infotext_fields = []
        self.paste_field_names = []
        self.inputs = [None]
        self.is_img2img = False
        self.initialized = False
        self.ui_created = False
        self.callback_map = {}
        self.callback_names = []
        self.on_before_component_elem_id = {}
        self.on_after_component_elem_id = {}

    def initialize_scripts(self, is_img2img):
        """Instantiate every registered script class; sort into always-on and selectable."""
        from modules import scripts_auto_postprocessing

        self.scripts.clear()
        self.alwayson_scripts.clear()
        self.selectable_scripts.clear()
        self.is_img2img = is_img2img

        # Scripts make components in __init__ or when told their tab (Neutral Prompt); those belong to no page yet.
        construction_scope = ui_builder.outside_the_page if ui_builder is not None else contextlib.nullcontext
        with construction_scope():
            for script_data in scripts_auto_postprocessing.create_auto_preprocessing_script_data() + scripts_data:
                self._add_script(script_data, is_img2img)

        self.titles = [_script_display_title(s) for s in self.selectable_scripts]
        self.title_map = {}
        for script in self.scripts:
            title = _script_display_title(script)
            script.name = wrap_call(lambda: title.lower(), script.filename, "title")
            self.title_map[title.lower()] = script

        self.callback_map.clear()
        self.apply_on_before_component_callbacks()
        self.initialized = True

    def _add_script(self, script_data, is_img2img):
        try:
            script = script_data.script_class()
        except Exception:
            errors.report(f"Error # failed to initialize Script {script_data.path}: ", exc_info=True)
            return
        script.filename = script_data.path
        script.is_txt2img = not is_img2img
        script.is_img2img = is_img2img
        script.tabname = "img2img" if is_img2img else "txt2img"

        visibility = wrap_call(script.show, script.filename, "show", script.is_img2img, default=False)
        if visibility is AlwaysVisible:
            self.scripts.append(script)
            self.alwayson_scripts.append(script)
            script.alwayson = True
        elif visibility:
            self.scripts.append(script)
            self.selectable_scripts.append(script)

    def apply_on_before_component_callbacks(self):
        for script in self.scripts:
            for elem_id, callback in (script.on_before_component_elem_id or []):
                self.on_before_component_elem_id.setdefault(elem_id, []).append((callback, script))
            for elem_id, callback in (script.on_after_component_elem_id or []):
                self.on_after_component_elem_id.setdefault(elem_id, []).append((callback, script))
            if script.on_before_component_elem_id:
                script.on_before_component_elem_id.clear()
            if script.on_after_component_elem_id:
                script.on_after_component_elem_id.clear()

    # ------------------------------------------------------------------ building the controls (A1111's methods)

    def prepare_ui(self):
        return _ui_builder().prepare_ui(self)

    def setup_ui_for_section(self, section, scriptlist=None):
        return _ui_builder().setup_ui_for_section(self, section, scriptlist)

    def setup_ui(self):
        return _ui_builder().setup_ui(self)

    def script(self, title):
        """The script with this title (case-insensitive), or None."""
        return self.title_map.get(str(title).lower())

    # ------------------------------------------------------------------ selectable script

    def _selected_script(self, index):
        if index is None or index == 0 or index == "None":
            return None
        if isinstance(index, str):
            return self.script(index) if self.script(index) in self.selectable_scripts else None
        if not 0 < index <= len(self.selectable_scripts):
            raise ValueError(f"script index {index} is out of range: there are {len(self.selectable_scripts)} scripts")
        return self.selectable_scripts[index - 1]

    def run(self, p, *args):
        """Run the script chosen in the dropdown (args[0]: 1-based index or title); None when no script is chosen."""
        script = self._selected_script(args[0] if args else None)
        if script is None:
            return None
        script_args = args[script.args_from:script.args_to]
        processed = script.run(p, *script_args)
        from modules import shared
        if shared.total_tqdm is not None:
            shared.total_tqdm.clear()
        return processed

    # ------------------------------------------------------------------ ordering of hooks

    def create_ordered_callbacks_list(self, method_name, *, enable_user_sort=True):
        script_list = self.scripts if method_name in ("before_component", "after_component") else self.alwayson_scripts
        category = f"script_{method_name}"
        callbacks = []
        for script in script_list:
            if getattr(script.__class__, method_name, None) is getattr(Script, method_name, None):
                continue
            script_callbacks.add_callback(callbacks, script, category=category, name=script.__class__.__name__,
                                          filename=script.filename)
        return script_callbacks.sort_callbacks(category, callbacks, enable_user_sort=enable_user_sort)

    def ordered_scripts(self, method_name):
        script_list = self.callback_map.get(method_name)
        if script_list is None:
            script_list = self.create_ordered_callbacks_list(method_name)
            self.callback_map[method_name] = script_list
        return [c.callback for c in script_list]

    # ------------------------------------------------------------------ hook dispatch

    @staticmethod
    def _args(p, script):
        if script.args_from is None or script.args_to is None:
            return ()
        return tuple(p.script_args[script.args_from:script.args_to])

    def _dispatch(self, method_name, p, call):
        for script in self.ordered_scripts(method_name):
            try:
                call(script, self._args(p, script))
            except Exception:
                errors.report(f"Error running {method_name}: {script.filename}", exc_info=True)

    def setup_scrips(self, p, *, is_ui=True):
        for script in self.ordered_scripts("setup"):
            if not is_ui and script.setup_for_ui_only:
                continue
            try:
                script.setup(p, *self._args(p, script))
            except Exception:
                errors.report(f"Error running setup: {script.filename}", exc_info=True)

    setup_scripts = setup_scrips

    def before_process(self, p):
        self._dispatch("before_process", p, lambda s, a: s.before_process(p, *a))

    def process(self, p):
        self._dispatch("process", p, lambda s, a: s.process(p, *a))

    def before_process_batch(self, p, **kwargs):
        self._dispatch("before_process_batch", p, lambda s, a: s.before_process_batch(p, *a, **kwargs))

    def after_extra_networks_activate(self, p, **kwargs):
        self._dispatch("after_extra_networks_activate", p, lambda s, a: s.after_extra_networks_activate(p, *a, **kwargs))

    def process_batch(self, p, **kwargs):
        self._dispatch("process_batch", p, lambda s, a: s.process_batch(p, *a, **kwargs))

    def process_before_every_sampling(self, p, **kwargs):
        self._dispatch("process_before_every_sampling", p, lambda s, a: s.process_before_every_sampling(p, *a, **kwargs))

    def before_hr(self, p):
        self._dispatch("before_hr", p, lambda s, a: s.before_hr(p, *a))

    def on_mask_blend(self, p, mba: MaskBlendArgs):
        self._dispatch("on_mask_blend", p, lambda s, a: s.on_mask_blend(p, mba, *a))

    def post_sample(self, p, ps: PostSampleArgs):
        self._dispatch("post_sample", p, lambda s, a: s.post_sample(p, ps, *a))

    def postprocess_batch(self, p, images, **kwargs):
        self._dispatch("postprocess_batch", p, lambda s, a: s.postprocess_batch(p, *a, images=images, **kwargs))

    def postprocess_batch_list(self, p, pp: PostprocessBatchListArgs, **kwargs):
        self._dispatch("postprocess_batch_list", p, lambda s, a: s.postprocess_batch_list(p, pp, *a, **kwargs))

    def postprocess_image(self, p, pp: PostprocessImageArgs):
        self._dispatch("postprocess_image", p, lambda s, a: s.postprocess_image(p, pp, *a))

    def postprocess_maskoverlay(self, p, ppmo: PostProcessMaskOverlayArgs):
        self._dispatch("postprocess_maskoverlay", p, lambda s, a: s.postprocess_maskoverlay(p, ppmo, *a))

    def postprocess_image_after_composite(self, p, pp: PostprocessImageArgs):
        self._dispatch("postprocess_image_after_composite", p, lambda s, a: s.postprocess_image_after_composite(p, pp, *a))

    def postprocess(self, p, processed):
        self._dispatch("postprocess", p, lambda s, a: s.postprocess(p, processed, *a))

    def before_component(self, component, **kwargs):
        for callback, script in self.on_before_component_elem_id.get(kwargs.get("elem_id"), []):
            try:
                callback(OnComponent(component=component))
            except Exception:
                errors.report(f"Error running on_before_component: {script.filename}", exc_info=True)
        for script in self.ordered_scripts("before_component"):
            try:
                script.before_component(component, **kwargs)
            except Exception:
                errors.report(f"Error running before_component: {script.filename}", exc_info=True)

    def after_component(self, component, **kwargs):
        for callback, script in self.on_after_component_elem_id.get(getattr(component, "elem_id", None), []):
            try:
                callback(OnComponent(component=component))
            except Exception:
                errors.report(f"Error running on_after_component: {script.filename}", exc_info=True)
        for script in self.ordered_scripts("after_component"):
            try:
                script.after_component(component, **kwargs)
            except Exception:
                errors.report(f"Error running after_component: {script.filename}", exc_info=True)

    # ------------------------------------------------------------------ arguments

    def set_named_arg(self, args, script_name, arg_elem_id, value, fuzzy=False):
        """Set the value of the control whose elem_id ends with `arg_elem_id` of script `script_name` in `args`."""
        script = next((x for x in self.scripts if x.name == script_name), None)
        if script is None:
            raise RuntimeError(f"script {script_name} not found")
        for i, control in enumerate(script.controls or []):
            elem_id = getattr(control, "elem_id", None) or ""
            if (arg_elem_id in elem_id) if fuzzy else elem_id.endswith(arg_elem_id):
                args[script.args_from + i] = value
                return args
        raise RuntimeError(f"arg_elem_id {arg_elem_id} not found in script {script_name}")

    def alwayson_args_from_request(self, alwayson_scripts, default_args):
        """Apply an API request's {"<title>": {"args": [...]}} to a copy of the default script args."""
        args = list(default_args)
        for title, payload in (alwayson_scripts or {}).items():
            script = self.script(title)
            if script is None or not script.alwayson:
                raise ValueError(f"always-on script not found: {title}")
            values = (payload or {}).get("args", [])
            count = (script.args_to or 0) - (script.args_from or 0)
            for i, value in enumerate(values[:count]):
                args[script.args_from + i] = value
        return args


scripts_txt2img: ScriptRunner = None
scripts_img2img: ScriptRunner = None
scripts_postproc = None
scripts_current: ScriptRunner = None
"""The runner whose UI is being built; component hooks go to its scripts."""


def reload_script_body_only():
    """Re-execute each script file and swap the new classes into the existing instances (A1111 dev helper)."""
    cache = {}
    for runner in (scripts_txt2img, scripts_img2img):
        if runner is None:
            continue
        for script in runner.scripts:
            path = script.filename
            if path not in cache:
                try:
                    cache[path] = script_loading.load_module(path)
                except Exception:
                    errors.report(f"Error reloading {path}", exc_info=True)
                    continue
            new_class = getattr(cache[path], script.__class__.__name__, None)
            if new_class is not None:
                script.__class__ = new_class
