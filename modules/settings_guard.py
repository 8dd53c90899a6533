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
