"""Settings: OptionInfo declarations and the Options store behind `shared.opts` (A1111: modules.options)."""
import json
import os
import sys
import threading

from modules import errors


class OptionInfo:
    """One setting: its default, label, the UI component it asks for, and where it belongs."""

    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None, section=None,
                 refresh=None, comment_before="", comment_after="", infotext=None, restrict_api=False, category_id=None):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.category_id = category_id
        self.refresh = refresh
        self.do_not_save = False
        self.comment_before = comment_before
        self.comment_after = comment_after
        self.infotext = infotext
        self.restrict_api = restrict_api
        self.reload_ui = False
        self.restart = False

    def link(self, label, url):
        self.comment_before += f"[<a href='{url}' target='_blank'>{label}</a>]"
        return self

    def js(self, label, js_func):
        self.comment_before += f"[<a onclick='{js_func}(); return false'>{label}</a>]"
        return self

    def info(self, info):
        self.comment_after += f"<span class='info'>({info})</span>"
        return self

    def html(self, html):
        self.comment_after += html
        return self

    def needs_restart(self):
        self.restart = True
        self.comment_after += " <span class='info'>(requires restart)</span>"
        return self

    def needs_reload_ui(self):
        self.reload_ui = True
        self.comment_after += " <span class='info'>(requires Reload UI)</span>"
        return self


class OptionHTML(OptionInfo):
    """A block of explanatory HTML among the settings; holds no value."""

    def __init__(self, text):
        super().__init__(str(text).strip(), label="", component=lambda **kwargs: __import__("gradio").HTML(value=text, **kwargs))
        self.do_not_save = True


def options_section(section_identifier, options_dict, category_id=None):
    """Tag every option in `options_dict` with a (key, title) section, as A1111's settings pages do."""
    for v in options_dict.values():
        if len(section_identifier) == 2:
            v.section = section_identifier
        elif len(section_identifier) == 3:
            v.section = section_identifier[0:2]
            v.category_id = section_identifier[2]
        if category_id is not None:
            v.category_id = category_id
    return options_dict


options_builtin_fields = {"data_labels", "data", "restricted_opts", "typemap"}


class Options:
    typemap = {int: float}

    def __init__(self, data_labels: dict, restricted_opts):
        self.data_labels = data_labels
        self.data = {k: v.default for k, v in self.data_labels.items() if not v.do_not_save}
        self.restricted_opts = restricted_opts
        self.config_problem = None  # message shown in the UI when config.json could not be read

    def __setattr__(self, key, value):
        if key in options_builtin_fields or key == "config_problem":
            return super().__setattr__(key, value)
        if self.data is not None and (key in self.data or key in self.data_labels):
            info = self.data_labels.get(key)
            if info is not None and info.do_not_save:
                return
            self.data[key] = value
            return
        return super().__setattr__(key, value)

    def __getattr__(self, item):
        if item in options_builtin_fields or item == "config_problem":
            return super().__getattribute__(item)
        data = super().__getattribute__("data")
        if data is not None and item in data:
            return data[item]
        labels = super().__getattribute__("data_labels")
        if item in labels:
            return labels[item].default
        return super().__getattribute__(item)

    def set(self, key, value, is_api=False, run_callbacks=True):
        """Set an option and run its onchange handler; returns True if the value changed."""
        oldval = self.data.get(key, None)
        if oldval == value:
            return False
        option = self.data_labels.get(key)
        if option is not None and option.do_not_save:
            return False
        if is_api and option is not None and option.restrict_api:
            return False
        try:
            setattr(self, key, value)
        except RuntimeError:
            return False
        if run_callbacks and option is not None and option.onchange is not None:
            try:
                option.onchange()
            except Exception as e:
                errors.display(e, f"changing setting {key} to {value}")
                setattr(self, key, oldval)
                return False
        return True

    def get_default(self, key):
        info = self.data_labels.get(key)
        return None if info is None else info.default

    def save(self, filename):
        """Write settings atomically: a crash mid-write never leaves a truncated config.json."""
        tmp = f"{filename}.tmp"
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        with open(tmp, "w", encoding="utf8") as file:
            json.dump(self.data, file, indent=4, ensure_ascii=False)
        os.replace(tmp, filename)

    def same_type(self, x, y):
        if x is None or y is None:
            return True
        type_x = self.typemap.get(type(x), type(x))
        type_y = self.typemap.get(type(y), type(y))
        return type_x == type_y

    def load(self, filename):
        """Read config.json; a corrupt file is kept aside as config.json.corrupt-N and defaults are used."""
        self.config_problem = None
        if not os.path.exists(filename):
            return
        try:
            with open(filename, "r", encoding="utf8") as file:
                loaded = json.load(file)
            if not isinstance(loaded, dict):
                raise ValueError("top level is not a JSON object")
        except Exception as e:
            n = 0
            while os.path.exists(f"{filename}.corrupt-{n}"):
                n += 1
            aside = f"{filename}.corrupt-{n}"
            os.replace(filename, aside)
            self.config_problem = f"Settings file {filename} could not be read ({e}); it was kept as {aside} and defaults are used."
            print(self.config_problem, file=sys.stderr)
            return
        bad = []
        for k, v in loaded.items():
            info = self.data_labels.get(k)
            if info is not None and not info.do_not_save and not self.same_type(info.default, v):
                bad.append(k)
                continue
            self.data[k] = v
        for k in bad:
            print(f"Warning: bad setting value in {filename}: {k}; using the default instead.", file=sys.stderr)

    def onchange(self, key, func, call=True):
        item = self.data_labels.get(key)
        item.onchange = func
        if call:
            func()

    def dumpjson(self):
        d = {k: self.data.get(k, v.default) for k, v in self.data_labels.items()}
        return json.dumps(d)

    def add_option(self, key, info):
        self.data_labels[key] = info
        if key not in self.data and not info.do_not_save:
            self.data[key] = info.default

    def reorder(self):
        """Group options by section, keeping the order sections first appeared in."""
        section_ids = {}
        for _, item in self.data_labels.items():
            section = item.section
            if section not in section_ids:
                section_ids[section] = len(section_ids)
        self.data_labels = dict(sorted(self.data_labels.items(), key=lambda x: section_ids[x[1].section]))

    def cast_value(self, key, value):
        """Cast a string (from an infotext) to the type of the option's default."""
        if value is None:
            return None
        default_value = self.data_labels[key].default
        if default_value is None:
            default_value = getattr(self, key, None)
        if default_value is None:
            return None
        expected_type = type(default_value)
        if expected_type == bool and value == "False":
            value = False
        elif expected_type == bool and value == "True":
            value = True
        elif expected_type == list and isinstance(value, str):
            value = [x.strip() for x in value.split(",") if x.strip()]
        else:
            value = expected_type(value)
        return value


class OptionsCategory:
    def __init__(self, id, label):
        self.id = id
        self.label = label


class OptionsCategories:
    def __init__(self):
        self.mapping = {}

    def register_category(self, category_id, label):
        if category_id not in self.mapping:
            self.mapping[category_id] = OptionsCategory(category_id, label)
        return category_id


categories = OptionsCategories()
