"""Reading infotexts back into settings, and the registry of "paste" targets (A1111: modules.infotext_utils).

Engine only: the Gradio side (Send-to buttons, wiring a paste into components) lives in webui/infotext_paste.py;
its A1111 names (`create_buttons`, `bind_buttons`, `connect_paste_params_buttons`, ...) are forwarded lazily
from here, so extensions importing them from this module still work and the engine never imports gradio.
"""
import base64
import io
import json
import math
import os
import re
import tempfile

from modules import errors, prompt_parser, shared

re_param_code = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)
re_imagesize = re.compile(r"^(\d+)x(\d+)$")
re_hypernet_hash = re.compile(r"\(([0-9a-f]+)\)$")

# Settings whose infotext name is not declared with OptionInfo(infotext=...); A1111 keeps this list empty now.
infotext_to_setting_name_mapping = []


def quote(text):
    """JSON-quote a value only when it contains a comma, colon or newline (so the params line stays parseable)."""
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


# --- parsing ---------------------------------------------------------------------------------------------------

def _old_hires_fix_first_pass_dimensions(width, height):
    """The first-pass size the pre-1.0 hires fix chose: about 512x512 pixels, multiples of 64."""
    desired_pixel_count = 512 * 512
    scale = math.sqrt(desired_pixel_count / (width * height))
    return math.ceil(scale * width / 64) * 64, math.ceil(scale * height / 64) * 64


def restore_old_hires_fix_params(res):
    """Infotexts from before hires fix had its own sliders stored 'First pass size'; map them onto today's fields."""
    firstpass_width = res.get("First pass size-1", None)
    firstpass_height = res.get("First pass size-2", None)

    if shared.opts.use_old_hires_fix_width_height:
        hires_width = int(res.get("Hires resize-1", 0))
        hires_height = int(res.get("Hires resize-2", 0))
        if hires_width and hires_height:
            res["Size-1"] = hires_width
            res["Size-2"] = hires_height
            return

    if firstpass_width is None or firstpass_height is None:
        return
    firstpass_width, firstpass_height = int(firstpass_width), int(firstpass_height)
    width = int(res.get("Size-1", 512))
    height = int(res.get("Size-2", 512))
    if firstpass_width == 0 or firstpass_height == 0:
        firstpass_width, firstpass_height = _old_hires_fix_first_pass_dimensions(width, height)
    res["Size-1"] = firstpass_width
    res["Size-2"] = firstpass_height
    res["Hires resize-1"] = width
    res["Hires resize-2"] = height


def _uses_emphasis(prompt, negative_prompt):
    attention = prompt_parser.parse_prompt_attention(prompt) + prompt_parser.parse_prompt_attention(negative_prompt)
    return len(attention) != len([p for p in attention if p[1] == 1.0 or p[0] == "BREAK"])


def _extract_styles(res, prompt, negative_prompt):
    """Remove known styles' text from the prompts and record them in 'Styles array' (setting infotext_styles)."""
    styles = shared.prompt_styles  # None until startup creates it
    if shared.opts.infotext_styles == "Ignore" or styles is None:
        return prompt, negative_prompt
    from modules import infotext_versions

    found_styles, prompt_no_styles, negative_prompt_no_styles = styles.extract_styles_from_prompt(prompt, negative_prompt)
    same_hr_styles = True
    if "Hires prompt" in res or "Hires negative prompt" in res:
        infotext_ver = infotext_versions.parse_version(res.get("Version"))
        if infotext_ver is None or infotext_ver > infotext_versions.v180_hr_styles:
            hr_prompt, hr_negative_prompt = res.get("Hires prompt", prompt), res.get("Hires negative prompt", negative_prompt)
            hr_found, hr_prompt_no_styles, hr_negative_no_styles = styles.extract_styles_from_prompt(hr_prompt, hr_negative_prompt)
            same_hr_styles = found_styles == hr_found
            if same_hr_styles:
                res["Hires prompt"] = "" if hr_prompt_no_styles == prompt_no_styles else hr_prompt_no_styles
                res["Hires negative prompt"] = "" if hr_negative_no_styles == negative_prompt_no_styles else hr_negative_no_styles
    if same_hr_styles:
        prompt, negative_prompt = prompt_no_styles, negative_prompt_no_styles
        if (shared.opts.infotext_styles == "Apply if any" and found_styles) or shared.opts.infotext_styles == "Apply":
            res["Styles array"] = found_styles
    return prompt, negative_prompt


def parse_generation_parameters(x: str, skip_fields: list[str] | None = None):
    """Parse an infotext into a dict of A1111 field names -> values (strings, as written), e.g.

    ```
    girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate
    Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, poorly drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b
    ```
    gives {"Prompt": ..., "Negative prompt": ..., "Steps": "20", "Sampler": "Euler a", "CFG scale": "7",
    "Seed": "965400086", "Size-1": "512", "Size-2": "512", "Model hash": "45dee52b", ...defaults}.
    """
    if skip_fields is None:
        skip_fields = shared.opts.infotext_skip_pasting or []
    x = x or ""
    res = {}
    prompt = ""
    negative_prompt = ""
    done_with_prompt = False

    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""

    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative_prompt += ("" if negative_prompt == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line

    for k, v in re_param.findall(lastline):
        try:
            if v and v[0] == '"' and v[-1] == '"':
                v = unquote(v)
            m = re_imagesize.match(v)
            if m is not None:
                res[f"{k}-1"] = m.group(1)
                res[f"{k}-2"] = m.group(2)
            else:
                res[k] = v
        except Exception:
            print(f'Error parsing "{k}: {v}"')

    prompt, negative_prompt = _extract_styles(res, prompt, negative_prompt)
    res["Prompt"] = prompt
    res["Negative prompt"] = negative_prompt

    # a missing field means the writer used the default of its time
    res.setdefault("Clip skip", "1")
    hypernet = res.get("Hypernet", None)
    if hypernet is not None:
        res["Prompt"] += f"""<hypernet:{hypernet}:{res.get("Hypernet strength", "1.0")}>"""
    if "Hires resize-1" not in res:
        res["Hires resize-1"] = 0
        res["Hires resize-2"] = 0
    res.setdefault("Hires sampler", "Use same sampler")
    res.setdefault("Hires schedule type", "Use same scheduler")
    res.setdefault("Hires checkpoint", "Use same checkpoint")
    res.setdefault("Hires prompt", "")
    res.setdefault("Hires negative prompt", "")
    res.setdefault("Mask mode", "Inpaint masked")
    res.setdefault("Masked content", "original")
    res.setdefault("Inpaint area", "Whole picture")
    res.setdefault("Masked area padding", 32)
    restore_old_hires_fix_params(res)
    res.setdefault("RNG", "GPU")
    res.setdefault("Schedule type", "Automatic")
    res.setdefault("Schedule max sigma", 0)
    res.setdefault("Schedule min sigma", 0)
    res.setdefault("Schedule rho", 0)
    res.setdefault("VAE Encoder", "Full")
    res.setdefault("VAE Decoder", "Full")
    res.setdefault("FP8 weight", "Disable")
    if "Cache FP16 weight for LoRA" not in res and res["FP8 weight"] != "Disable":
        res["Cache FP16 weight for LoRA"] = False
    if "Emphasis" not in res and _uses_emphasis(prompt, negative_prompt):
        res["Emphasis"] = "Original"
    res.setdefault("Refiner switch by sampling steps", False)

    from modules import infotext_versions
    infotext_versions.backcompat(res)

    for key in skip_fields:
        res.pop(key, None)
    return res


# --- override settings ---------------------------------------------------------------------------------------------

def _infotext_setting_mapping():
    return [(info.infotext, k) for k, info in shared.opts.data_labels.items() if info.infotext] + infotext_to_setting_name_mapping


def get_override_settings(params, *, skip_fields=None):
    """[(infotext name, setting name, value)] for fields of `params` that differ from the current settings."""
    res = []
    for param_name, setting_name in _infotext_setting_mapping():
        if param_name in (skip_fields or {}):
            continue
        v = params.get(param_name, None)
        if v is None:
            continue
        if setting_name == "sd_model_checkpoint" and shared.opts.disable_weights_auto_swap:
            continue
        try:
            v = shared.opts.cast_value(setting_name, v)
        except (ValueError, TypeError):
            continue
        current_value = getattr(shared.opts, setting_name, None)
        if v == current_value:
            continue
        res.append((param_name, setting_name, v))
    return res


def create_override_settings_dict(text_pairs):
    """["Clip skip: 2", "ENSD: 31337"] -> {"CLIP_stop_at_last_layers": 2, "eta_noise_seed_delta": 31337}."""
    res = {}
    params = {}
    for pair in text_pairs or []:
        if ":" not in pair:
            raise ValueError(f"override setting {pair!r} is not of the form 'Name: value'")
        k, v = pair.split(":", maxsplit=1)
        params[k] = v.strip()
    for param_name, setting_name in _infotext_setting_mapping():
        value = params.get(param_name, None)
        if value is None:
            continue
        res[setting_name] = shared.opts.cast_value(setting_name, value)
    return res


# --- paste targets registry -----------------------------------------------------------------------------------------

class ParamBinding:
    """A 'Send to <tab>' button: which text/image component it reads and which tab it fills."""

    def __init__(self, paste_button, tabname, source_text_component=None, source_image_component=None,
                 source_tabname=None, override_settings_component=None, paste_field_names=None):
        self.paste_button = paste_button
        self.tabname = tabname
        self.source_text_component = source_text_component
        self.source_image_component = source_image_component
        self.source_tabname = source_tabname
        self.override_settings_component = override_settings_component
        self.paste_field_names = paste_field_names or []


class PasteField(tuple):
    """(component, target): target is an infotext key or a function params -> value."""

    def __new__(cls, component, target, *, api=None):
        return super().__new__(cls, (component, target))

    def __init__(self, component, target, *, api=None):
        super().__init__()
        self.api = api
        self.component = component
        self.label = target if isinstance(target, str) else None
        self.function = target if callable(target) else None


paste_fields: dict[str, dict] = {}
registered_param_bindings: list[ParamBinding] = []


def reset():
    paste_fields.clear()
    registered_param_bindings.clear()


def add_paste_fields(tabname, init_img, fields, override_settings_component=None):
    """Register the components of tab `tabname` that an infotext can fill."""
    if fields:
        for i in range(len(fields)):
            if not isinstance(fields[i], PasteField):
                fields[i] = PasteField(*fields[i])
    paste_fields[tabname] = {"init_img": init_img, "fields": fields, "override_settings_component": override_settings_component}


def register_paste_params_button(binding: ParamBinding):
    registered_param_bindings.append(binding)


KEEP = object()  # paste_values: leave this component as it is


def cast_paste_value(value, current_value):
    """Convert an infotext string to the type of the component's current value (A1111's rules); KEEP if it can't."""
    try:
        valtype = type(current_value)
        if valtype is bool and value == "False":
            return False
        if valtype is bool:
            return bool(value) if not isinstance(value, str) else value == "True"
        if valtype is int:
            return float(value)
        if current_value is None:
            return value
        return valtype(value)
    except Exception:
        return KEEP


def paste_values(params, fields, current_values):
    """For each (component, target) in `fields`, the value to set (cast like the current value) or KEEP."""
    res = []
    for (_component, key), current in zip(fields, current_values):
        if callable(key):
            try:
                v = key(params)
            except Exception:
                errors.report(f"Error executing {key}", exc_info=True)
                v = None
        else:
            v = params.get(key, None)
        if v is None:
            res.append(KEEP)
        elif not isinstance(v, (str, int, float, bool)):
            res.append(v)  # already a ready-made update (e.g. from a callable)
        else:
            res.append(cast_paste_value(v, current))
    return res


def read_last_prompt_if_empty(prompt):
    """An empty paste reads params.txt, the infotext of the last generation (A1111's ↙️ button)."""
    if prompt:
        return prompt
    if shared.cmd_opts.hide_ui_dir_config or shared.cmd_opts.no_prompt_history:
        return prompt
    filename = os.path.join(shared.data_path, "params.txt")
    try:
        with open(filename, "r", encoding="utf8") as file:
            return file.read()
    except OSError:
        return prompt


# --- images sent between tabs --------------------------------------------------------------------------------------

def _allowed_image_path(filename):
    real = os.path.realpath(filename)
    roots = [tempfile.gettempdir(), shared.data_path, shared.opts.temp_dir or None,
             os.environ.get("GRADIO_TEMP_DIR")] + list(shared.cmd_opts.gradio_allowed_path or [])
    return any(root and (real + os.sep).startswith(os.path.realpath(root) + os.sep) for root in roots)


def image_from_url_text(filedata):
    """A gallery item, file dict or base64 data URL -> PIL image; None for nothing. Files outside the temp/data
    folders are refused."""
    from modules import images
    if filedata is None:
        return None
    if isinstance(filedata, list):
        if len(filedata) == 0:
            return None
        filedata = filedata[0]
    if isinstance(filedata, (tuple, list)) and filedata:  # gallery item (image, caption)
        filedata = filedata[0]
    if hasattr(filedata, "size") and hasattr(filedata, "mode"):
        return filedata
    if isinstance(filedata, str) and not filedata.startswith("data:") and os.path.isfile(filedata):
        filedata = {"path": filedata}  # Gradio 6 galleries give (file path, caption)
    if isinstance(filedata, dict):
        inner = filedata.get("image", filedata)
        filename = inner.get("path") or inner.get("name") if isinstance(inner, dict) else None
        if filename is None:
            return None
        filename = filename.rsplit("?", 1)[0]
        if not _allowed_image_path(filename):
            raise ValueError(f"refusing to open image file outside of allowed directories: {filename}")
        return images.read(filename)
    if not isinstance(filedata, str):
        raise ValueError(f"cannot read an image from {type(filedata).__name__}")
    if filedata.startswith("data:image/") and "," in filedata:
        filedata = filedata.split(",", 1)[1]
    data = base64.decodebytes(filedata.encode("utf-8"))
    return images.read(io.BytesIO(data))


_gradio_names = {"create_buttons", "bind_buttons", "connect_paste_params_buttons", "connect_paste",
                 "send_image_and_dimensions", "create_paste_fields_button"}


def __getattr__(name):
    if name in _gradio_names:
        import importlib
        return getattr(importlib.import_module("webui.infotext_paste"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
