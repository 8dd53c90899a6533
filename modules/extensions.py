"""Extension folders: discovery, metadata.ini, enable/disable, install.py, and the files they bring (A1111: modules.extensions).

An extension is a sub-folder of `extensions-builtin/` or `<data dir>/extensions/`. Its `metadata.ini` may name
requirements and Before/After ordering for its scripts and callbacks; `scripts/*.py` are loaded by
`modules.scripts.load_scripts()`, `javascript/*.js|*.mjs`, `style.css` and `localizations/*.json` are collected
here for the UI to inject.
"""
import configparser
import dataclasses
import os
import re
import subprocess
import sys
import threading

from modules import errors, paths_internal, util

extensions_dir = paths_internal.extensions_dir
extensions_builtin_dir = paths_internal.extensions_builtin_dir

extensions = []                 # every Extension found by list_extensions(), enabled or not
extension_paths = {}            # realpath -> Extension, for find_extension()
loaded_extensions = {}          # canonical name -> Extension


def _shared():
    from modules import shared
    return shared


def active():
    """Enabled extensions, honouring --disable-all-extensions / --disable-extra-extensions and the setting."""
    shared = _shared()
    setting = shared.opts.disable_all_extensions
    if shared.cmd_opts.disable_all_extensions or setting == "all":
        return []
    if shared.cmd_opts.disable_extra_extensions or setting == "extra":
        return [x for x in extensions if x.enabled and x.is_builtin]
    return [x for x in extensions if x.enabled]


@dataclasses.dataclass
class CallbackOrderInfo:
    name: str
    before: list
    after: list


class ExtensionMetadata:
    """The extension's metadata.ini: Requires, per-script Before/After, and [callbacks/...] ordering."""
    filename = "metadata.ini"

    def __init__(self, path, canonical_name):
        self.config = configparser.ConfigParser()
        filepath = os.path.join(path, self.filename)
        if os.path.isfile(filepath):
            try:
                self.config.read(filepath, encoding="utf8")
            except Exception:
                errors.report(f"Error reading {filepath} for extension {canonical_name}.", exc_info=True)

        # A1111 reads Name and then ignores it (a known bug); we honour it.
        name = self.config.get("Extension", "Name", fallback=canonical_name)
        self.canonical_name = (name or canonical_name).lower().strip()
        self.requires = self.get_script_requirements("Requires", "Extension")

    def get_script_requirements(self, field, section, extra_section=None):
        """Names listed under `field` in `section` (and `extra_section`); 'a|b' resolves to whichever is loaded."""
        text = self.config.get(section, field, fallback="")
        if extra_section:
            text = text + ", " + self.config.get(extra_section, field, fallback="")
        res = []
        for requirement in self.parse_list(text.lower()):
            alternatives = requirement.split("|")
            res.append(next((x for x in alternatives if x in loaded_extensions), requirement))
        return res

    @staticmethod
    def parse_list(text):
        if not text:
            return []
        return [x for x in re.split(r"[,\s]+", text.strip()) if x]

    def list_callback_order_instructions(self):
        for section in self.config.sections():
            if not section.startswith("callbacks/"):
                continue
            callback_name = section[len("callbacks/"):]
            if not callback_name.startswith(self.canonical_name):
                errors.report(f"Callback order section for extension {self.canonical_name} is referencing the wrong extension: {section}")
                continue
            before = self.parse_list(self.config.get(section, "Before", fallback=""))
            after = self.parse_list(self.config.get(section, "After", fallback=""))
            yield CallbackOrderInfo(callback_name, before, after)


class Extension:
    lock = threading.Lock()

    def __init__(self, name, path, enabled=True, is_builtin=False, metadata=None):
        self.name = name
        self.path = path
        self.enabled = enabled
        self.status = ""
        self.can_update = False
        self.is_builtin = is_builtin
        self.commit_hash = ""
        self.commit_date = None
        self.version = ""
        self.branch = None
        self.remote = None
        self.have_info_from_repo = False
        self.metadata = metadata if metadata else ExtensionMetadata(self.path, name.lower())
        self.canonical_name = self.metadata.canonical_name

    def to_dict(self):
        return {k: getattr(self, k) for k in ("name", "path", "enabled", "is_builtin", "canonical_name", "commit_hash",
                                              "commit_date", "version", "branch", "remote", "have_info_from_repo")}

    def from_dict(self, d):
        for k, v in d.items():
            if k not in ("name", "path", "is_builtin", "canonical_name"):
                setattr(self, k, v)

    def _git(self, *args):
        out = subprocess.run(["git", "-C", self.path, *args], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip() or f"git {' '.join(args)} failed")
        return out.stdout.strip()

    def read_info_from_repo(self):
        """Remote URL, branch, commit hash/date and version (first 8 hex digits) from the folder's git repository."""
        if self.is_builtin or self.have_info_from_repo:
            return
        with self.lock:
            if self.have_info_from_repo:
                return
            self.have_info_from_repo = True
            if not os.path.exists(os.path.join(self.path, ".git")):
                return
            try:
                self.remote = self._git("config", "--get", "remote.origin.url") or None
            except Exception:
                self.remote = None
            try:
                self.commit_hash = self._git("rev-parse", "HEAD")
                self.commit_date = int(self._git("log", "-1", "--format=%ct"))
                self.version = self.commit_hash[:8]
                branch = self._git("rev-parse", "--abbrev-ref", "HEAD")
                self.branch = None if branch == "HEAD" else branch
            except Exception:
                errors.report(f"Failed reading extension data from Git repository ({self.name})", exc_info=True)
                self.remote = None

    def list_files(self, subdir, extension):
        """Files directly in `subdir` whose name ends with `extension`, sorted by name, as ScriptFile tuples."""
        from modules.script_loading import ScriptFile
        dirpath = os.path.join(self.path, subdir)
        if not os.path.isdir(dirpath):
            return []
        res = []
        for filename in sorted(os.listdir(dirpath)):
            path = os.path.join(dirpath, filename)
            if os.path.splitext(filename)[1].lower() == extension and os.path.isfile(path):
                res.append(ScriptFile(self.path, filename, path))
        return res

    def check_updates(self):
        if not os.path.exists(os.path.join(self.path, ".git")):
            self.can_update = False
            self.status = "unknown"
            return
        try:
            self._git("fetch", "--quiet")
            local = self._git("rev-parse", "HEAD")
            remote = self._git("rev-parse", "@{u}")
        except Exception as e:
            self.can_update = False
            self.status = f"error: {e}"
            return
        self.can_update = local != remote
        self.status = "new commits" if self.can_update else "latest"

    def fetch_and_reset_hard(self, commit="origin"):
        self._git("fetch", "--all")
        self._git("reset", commit, "--hard")
        self.have_info_from_repo = False


def _disabled_names():
    return set(getattr(_shared().opts, "disabled_extensions", None) or [])


def list_extensions():
    """Scan extensions-builtin/ then extensions/, each folder sorted by name, into `extensions`."""
    extensions.clear()
    extension_paths.clear()
    loaded_extensions.clear()

    shared = _shared()
    if shared.cmd_opts.disable_all_extensions:
        print("*** \"--disable-all-extensions\" arg was used, will not load any extensions ***")
    elif shared.opts.disable_all_extensions == "all":
        print("*** \"Disable all extensions\" option was set, will not load any extensions ***")
    elif shared.cmd_opts.disable_extra_extensions:
        print("*** \"--disable-extra-extensions\" arg was used, will only load built-in extensions ***")
    elif shared.opts.disable_all_extensions == "extra":
        print("*** \"Disable all extensions\" option was set, will only load built-in extensions ***")

    disabled = _disabled_names()
    for dirname, is_builtin in ((extensions_builtin_dir, True), (extensions_dir, False)):
        if not dirname or not os.path.isdir(dirname):
            continue
        for name in sorted(os.listdir(dirname)):
            path = os.path.join(dirname, name)
            if name.startswith(".") or not os.path.isdir(path):
                continue
            metadata = ExtensionMetadata(path, name.lower())
            canonical = metadata.canonical_name
            if canonical in loaded_extensions:
                errors.report(f'Duplicate canonical name "{canonical}" found in extensions "{name}" and '
                              f'"{loaded_extensions[canonical].name}". Former will be discarded.', exc_info=False)
                continue
            ext = Extension(name=name, path=path, enabled=name not in disabled, is_builtin=is_builtin, metadata=metadata)
            extensions.append(ext)
            extension_paths[os.path.realpath(path)] = ext
            loaded_extensions[canonical] = ext

    # Requirements are checked once everything is known; problems are reported, never fatal.
    for ext in extensions:
        if not ext.enabled:
            continue
        for req in ext.metadata.get_script_requirements("Requires", "Extension"):
            required = loaded_extensions.get(req)
            if required is None:
                errors.report(f'Extension "{ext.name}" requires "{req}" which is not installed.', exc_info=False)
            elif not required.enabled:
                errors.report(f'Extension "{ext.name}" requires "{required.name}" which is disabled.', exc_info=False)
    return extensions


def find_extension(filename):
    """The extension whose folder holds `filename`, or None."""
    if not extension_paths or not filename:
        return None
    path = os.path.realpath(filename)
    while True:
        ext = extension_paths.get(path)
        if ext is not None:
            return ext
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def get_extension_dirs():
    return [x.path for x in active()]


# ---------------------------------------------------------------------------------------------- ordering

def order_by_metadata(callbacks, category):
    """Reorder ScriptCallbacks of one category by every extension's [callbacks/<name>] Before/After sections."""
    lookup = {c.name: c for c in callbacks}
    instructions = {}
    for ext in extensions:
        for info in ext.metadata.list_callback_order_instructions():
            if info.name in lookup:
                instructions.setdefault(info.name, []).append(info)
    if not instructions:
        return list(callbacks)

    dependencies = {c.name: [] for c in callbacks}
    for c in callbacks:
        for info in instructions.get(c.name, []):
            dependencies[c.name] += [a for a in info.after if a in lookup]
            for b in info.before:
                if b in lookup:
                    dependencies[b].append(c.name)
    return [lookup[name] for name in util.topological_sort(dependencies)]


# ---------------------------------------------------------------------------------------------- files for the UI

def list_extension_files(subdir, extension):
    """(Extension, ScriptFile) of every active extension's `subdir/*<extension>`, in load order."""
    res = []
    for ext in active():
        for f in ext.list_files(subdir, extension):
            res.append((ext, f))
    return res


def javascript_files():
    """(path, is_module) of the active extensions' javascript: every .js first, then every .mjs, as A1111 injects."""
    js = [(f.path, False) for _, f in list_extension_files("javascript", ".js")]
    mjs = [(f.path, True) for _, f in list_extension_files("javascript", ".mjs")]
    return js + mjs


def css_files():
    """Each active extension's root style.css, in extension order."""
    return [os.path.join(x.path, "style.css") for x in active() if os.path.isfile(os.path.join(x.path, "style.css"))]


def localization_files():
    """Localization name (file stem) -> list of json paths from active extensions' localizations/ folders."""
    res = {}
    for _, f in list_extension_files("localizations", ".json"):
        res.setdefault(os.path.splitext(f.filename)[0], []).append(f.path)
    return res


# ---------------------------------------------------------------------------------------------- install.py

def _installable_extension_dirs(settings_file=None):
    """Folders in extensions/ (not builtins) whose install.py should run, honouring the disable settings."""
    import json
    disabled, disable_all = [], "none"
    if settings_file and os.path.isfile(settings_file):
        try:
            with open(settings_file, encoding="utf8") as f:
                config = json.load(f)
            disabled = config.get("disabled_extensions", []) or []
            disable_all = config.get("disable_all_extensions", "none")
        except Exception:
            errors.report(f"Could not read {settings_file} to find disabled extensions", exc_info=True)
    if disable_all != "none" or not os.path.isdir(extensions_dir):
        return []
    return [os.path.join(extensions_dir, d) for d in sorted(os.listdir(extensions_dir))
            if d not in disabled and not d.startswith(".") and os.path.isdir(os.path.join(extensions_dir, d))]


def run_extension_installer(extension_dir):
    """Run one extension's install.py in a subprocess with the repo root importable; report failures, never raise."""
    path_installer = os.path.join(extension_dir, "install.py")
    if not os.path.isfile(path_installer):
        return True
    env = os.environ.copy()
    env["PYTHONPATH"] = paths_internal.script_path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        result = subprocess.run([sys.executable, path_installer], cwd=extension_dir, env=env, capture_output=True, text=True)
    except Exception:
        errors.report(f"Error running install.py for extension {os.path.basename(extension_dir)} ({extension_dir}).", exc_info=True)
        return False
    if result.stdout:
        print(result.stdout, end="" if result.stdout.endswith("\n") else "\n")
    if result.returncode != 0:
        errors.report(f"Error running install.py for extension {os.path.basename(extension_dir)} ({extension_dir}); "
                      f"the web UI starts without what it installs.\n"
                      f"Command: \"{sys.executable}\" \"{path_installer}\"\nError code: {result.returncode}\n"
                      f"stderr: {result.stderr.strip()}", exc_info=False)
        return False
    return True


def run_extensions_installers(settings_file=None):
    """Run install.py of every enabled non-builtin extension (not with --skip-install / --disable-*-extensions)."""
    if "--skip-install" in sys.argv or "--disable-all-extensions" in sys.argv or "--disable-extra-extensions" in sys.argv:
        return
    for dirname in _installable_extension_dirs(settings_file):
        run_extension_installer(dirname)


def collect_ui_assets():
    """(javascript paths, css paths, localization dict) the page injects for active extensions, in A1111's order.

    The localization dict merges every `localizations/<name>.json` whose name is the `localization` setting.
    """
    import json
    js = [path for path, _ in javascript_files()]
    css = css_files()
    localization = {}
    chosen = getattr(_shared().opts, "localization", "None")
    for path in localization_files().get(chosen, []):
        try:
            with open(path, encoding="utf8") as f:
                localization.update(json.load(f))
        except Exception:
            errors.report(f"Error loading localization from {path}", exc_info=True)
    return js, css, localization
