"""Old name of modules.infotext_utils, kept because many extensions still import it."""
from modules.infotext_utils import *  # noqa: F401,F403
from modules.infotext_utils import (  # noqa: F401  (names star-import skips or that extensions use directly)
    ParamBinding, PasteField, paste_fields, registered_param_bindings, reset, add_paste_fields,
    register_paste_params_button, parse_generation_parameters, quote, unquote, image_from_url_text,
    get_override_settings, create_override_settings_dict, infotext_to_setting_name_mapping, re_param, re_imagesize,
)


def __getattr__(name):
    from modules import infotext_utils
    return infotext_utils.__getattr__(name)
