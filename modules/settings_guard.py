"""Which settings may be changed, and to what: settings frozen by command-line flags, and A1111's restricted
options (output folders and file name patterns) that may not point outside the data folder when the server is
reachable from other machines."""
import os

from modules import shared


class SettingRefused(PermissionError):
    def __init__(self, key, message):
        super().__init__(message)
        self.key = key


def frozen(key, info) -> bool:
    """Whether --freeze-settings, --freeze-specific-settings or --freeze-settings-in-sections covers `key`."""
    cmd = shared.cmd_opts
    if cmd.freeze_settings:
        return True
    if cmd.freeze_specific_settings and key in [x.strip() for x in cmd.freeze_specific_settings.split(",")]:
        return True
    if cmd.freeze_settings_in_sections and info is not None and info.section and info.section[0] in [x.strip() for x in cmd.freeze_settings_in_sections.split(",")]:
        return True
    return False


def server_name(cmd_opts=None) -> str:
    cmd_opts = cmd_opts or shared.cmd_opts
    if cmd_opts.server_name:
        return cmd_opts.server_name
    return "0.0.0.0" if cmd_opts.listen else "127.0.0.1"


def exposed(cmd_opts=None) -> bool:
    """Whether other machines can reach the server: --share, --listen, or a --server-name that is not loopback."""
    cmd_opts = cmd_opts or shared.cmd_opts
    return bool(cmd_opts.share) or server_name(cmd_opts) not in ("127.0.0.1", "localhost", "::1")


def inside_data_dir(value) -> bool:
    """A relative path or pattern stays inside the data folder; an absolute one must already be inside it."""
    data = os.path.realpath(shared.data_path)
    path = os.path.realpath(os.path.join(data, str(value)))
    return path == data or path.startswith(data + os.sep)


def check_setting(key, value, *, info=None):
    """Raise SettingRefused when `key` may not be set to `value` from outside (the API, a shared UI)."""
    if frozen(key, info):
        raise SettingRefused(key, f"the setting {key!r} is frozen by a command-line flag")
    if key in shared.restricted_opts:
        if shared.cmd_opts.hide_ui_dir_config:
            raise SettingRefused(key, f"the setting {key!r} names a folder or file name and is restricted by --hide-ui-dir-config")
        if exposed() and value not in (None, "") and not inside_data_dir(value):
            raise SettingRefused(key, f"the setting {key!r} may not point outside the data folder ({shared.data_path}) "
                                      f"while the server is reachable from other machines")


# ---------------------------------------------------------------------------------------------- values

CHOICE_COMPONENTS = ("Dropdown", "Radio", "CheckboxGroup")


def component_name(info):
    """"Slider", "Dropdown", ...: options name their component, extensions' pass the gradio class."""
    return info.component if isinstance(info.component, str) else getattr(info.component, "__name__", None)


def component_args(info) -> dict:
    """An option's component arguments, made now when they come from a function (its choices change with the
    files installed)."""
    from modules import errors
    args = info.component_args
    if callable(args):
        try:
            args = args()
        except Exception:
            errors.report(f"Error getting component arguments for setting {info.label}", exc_info=True)
            args = {}
    return dict(args or {})


def choice_values(choices):
    """The values of a choices list whose items may be (label, value) pairs."""
    return [c[1] if isinstance(c, (list, tuple)) else c for c in choices or []]


def as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def invalid_choice(info, value, old):
    """Why `value` cannot be saved for a choice option, checked against its choices computed now (those that come
    from a function include what was installed since the page was built); None when it can. A value it already
    holds stays allowed."""
    if component_name(info) not in CHOICE_COMPONENTS:
        return None
    args = component_args(info)
    allowed = choice_values(args.get("choices"))
    if args.get("allow_custom_value") or not allowed:
        return None
    unknown = [v for v in as_list(value) if v not in allowed and v not in as_list(old)]
    return f"{', '.join(map(repr, unknown))} is not one of its choices" if unknown else None


def _kind(value) -> str:
    return {bool: "true or false", int: "a number", float: "a number", str: "a string", list: "a list"}.get(type(value), type(value).__name__)


# Settings that name the file format images are saved (and the API's images encoded) in.
IMAGE_FORMAT_SETTINGS = ("samples_format", "grid_format")


def value_problem(key, info, value, old):
    """Why `value` cannot be stored for option `key` (not the kind of value its default is, outside its slider,
    not one of its choices, not an image format); None when it can. What the option holds now is always allowed
    back (a settings round trip)."""
    if value == old:
        return None
    default = info.default
    if value is None:
        return None if default is None or isinstance(default, list) else f"must be {_kind(default)}, not null"
    if default is not None and not shared.opts.same_type(default, value):
        return f"must be {_kind(default)}, got {value!r}"
    if key in IMAGE_FORMAT_SETTINGS:
        from modules import images
        if images.saver_format(value) is None:
            return f"must be an image file format this server can save (png, jpg, webp, ...), got {value!r}"
    return out_of_range(info, value) or invalid_choice(info, value, old)


def out_of_range(info, value):
    """Why a number is outside its slider's range; None when it is inside (or the option has no slider)."""
    if component_name(info) != "Slider" or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    args = component_args(info)
    low, high = args.get("minimum"), args.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        return f"must be between {low} and {high}, got {value}"
    return None
