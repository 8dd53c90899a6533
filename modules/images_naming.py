"""File and folder names for saved images: A1111's `[pattern]` language, sanitizing and the 5-digit counter.

The public names are re-exported by modules.images, where extensions import them from.
"""
import datetime
import hashlib
import os
import re
import string

from modules import errors, shared

invalid_filename_chars = '#<>:"/\\|?*\n\r\t'
invalid_filename_prefix = " "
invalid_filename_postfix = " ."
re_nonletters = re.compile(r"[\s" + re.escape(string.punctuation) + r"]+")
re_pattern = re.compile(r"(.*?)(?:\[([^\[\]]+)\]|$)")
re_pattern_arg = re.compile(r"(.*)<([^>]*)>$")

NOTHING_AND_SKIP_PREVIOUS_TEXT = object()  # a pattern that drops itself and the literal text before it


def max_filename_part_length():
    return shared.cmd_opts.filenames_max_length


def sanitize_filename_part(text, replace_spaces=True):
    """Make `text` safe as part of a file name: no path separators or reserved characters, bounded length."""
    if text is None:
        return None
    text = str(text)
    if replace_spaces:
        text = text.replace(" ", "_")
    bad = "/" if shared.cmd_opts.unix_filenames_sanitization else invalid_filename_chars
    text = text.translate({ord(x): "_" for x in bad})
    text = text.lstrip(invalid_filename_prefix)[:max_filename_part_length()]
    text = text.rstrip(invalid_filename_postfix)
    return text


def get_next_sequence_number(path, basename):
    """The next free counter for files in `path` named `<basename>-NNNN...` (or `NNNNN-...` with no basename)."""
    result = -1
    if basename != "":
        basename = f"{basename}-"
    prefix_length = len(basename)
    if not os.path.isdir(path):
        return 0
    for name in os.listdir(path):
        if name.startswith(basename):
            parts = os.path.splitext(name[prefix_length:])[0].split("-")
            try:
                result = max(int(parts[0]), result)
            except ValueError:
                pass
    return result + 1


def _p(self, name, default=None):
    return getattr(self.p, name, default) if self.p is not None else default


class FilenameGenerator:
    """Expands `[seed]-[prompt_spaces]`-style patterns for one image (A1111: images.FilenameGenerator)."""

    replacements = {
        "seed": lambda self: self.seed if self.seed is not None else "",
        "seed_first": lambda self: self.seed if _p(self, "batch_size", 1) == 1 else self.p.all_seeds[0],
        "seed_last": lambda self: NOTHING_AND_SKIP_PREVIOUS_TEXT if _p(self, "batch_size", 1) == 1 else self.p.all_seeds[-1],
        "steps": lambda self: _p(self, "steps"),
        "cfg": lambda self: _p(self, "cfg_scale"),
        "width": lambda self: self.image.width,
        "height": lambda self: self.image.height,
        "styles": lambda self: self.p and sanitize_filename_part(", ".join([s for s in (self.p.styles or []) if s != "None"]) or "None", replace_spaces=False),
        "sampler": lambda self: self.p and sanitize_filename_part(self.p.sampler_name, replace_spaces=False),
        "sampler_scheduler": lambda self: self.p and self.sampler_scheduler(),
        "scheduler": lambda self: self.p and sanitize_filename_part(getattr(self.p, "scheduler", None), replace_spaces=False),
        "model_hash": lambda self: _p(self, "sd_model_hash") or getattr(shared.sd_model, "sd_model_hash", None),
        "model_name": lambda self: self.model_name(),
        "date": lambda self: datetime.datetime.now().strftime("%Y-%m-%d"),
        "datetime": lambda self, *args: self.datetime(*args),
        "job_timestamp": lambda self: _p(self, "job_timestamp") or shared.state.job_timestamp,
        "prompt_hash": lambda self, *args: self.string_hash(self.prompt, *args),
        "negative_prompt_hash": lambda self, *args: self.string_hash(_p(self, "negative_prompt", ""), *args),
        "full_prompt_hash": lambda self, *args: self.string_hash(f"{_p(self, 'prompt', '')} {_p(self, 'negative_prompt', '')}", *args),
        "prompt": lambda self: sanitize_filename_part(self.prompt),
        "prompt_no_styles": lambda self: self.prompt_no_style(),
        "prompt_spaces": lambda self: sanitize_filename_part(self.prompt, replace_spaces=False),
        "prompt_words": lambda self: self.prompt_words(),
        "batch_number": lambda self: NOTHING_AND_SKIP_PREVIOUS_TEXT if _p(self, "batch_size", 1) == 1 or self.zip else self.p.batch_index + 1,
        "batch_size": lambda self: _p(self, "batch_size"),
        "generation_number": lambda self: NOTHING_AND_SKIP_PREVIOUS_TEXT if (_p(self, "n_iter", 1) == 1 and _p(self, "batch_size", 1) == 1) or self.zip else self.p.iteration * self.p.batch_size + self.p.batch_index + 1,
        "hasprompt": lambda self, *args: self.hasprompt(*args),
        "clip_skip": lambda self: shared.opts.data.get("CLIP_stop_at_last_layers", 1),
        "denoising": lambda self: _p(self, "denoising_strength") or NOTHING_AND_SKIP_PREVIOUS_TEXT,
        "user": lambda self: _p(self, "user"),
        "vae_filename": lambda self: self.get_vae_filename(),
        "none": lambda self: "",
        "image_hash": lambda self, *args: self.image_hash(*args),
    }
    default_time_format = "%Y%m%d%H%M%S"

    def __init__(self, p, seed, prompt, image, zip=False, basename=""):
        self.p = p
        self.seed = seed
        self.prompt = prompt
        self.image = image
        self.zip = zip
        self.basename = basename

    def get_vae_filename(self):
        vae = shared.sd_vae or _p(self, "sd_vae_name")
        if not vae:
            return "NoneType"
        return os.path.splitext(os.path.basename(str(vae)))[0]

    def model_name(self):
        info = getattr(shared.sd_model, "sd_checkpoint_info", None)
        name = getattr(info, "name_for_extra", None) or _p(self, "sd_model_name")
        return sanitize_filename_part(name, replace_spaces=False) if name else None

    def sampler_scheduler(self):
        sampler = self.p.sampler_name
        scheduler = getattr(self.p, "scheduler", None)
        if scheduler and scheduler != "Automatic":
            return sanitize_filename_part(f"{sampler}_{scheduler}", replace_spaces=False)
        return sanitize_filename_part(sampler, replace_spaces=False)

    def hasprompt(self, *args):
        """`[hasprompt<word|text if absent><other>]`: emit each word (or its fallback) present in the prompt."""
        lower = (self.prompt or "").lower()
        if self.p is None or self.prompt is None:
            return None
        out = ""
        for arg in args:
            if arg != "":
                division = arg.split("|")
                expected = division[0].lower()
                default = division[1] if len(division) > 1 else ""
                out += expected if lower.find(expected) >= 0 else default
        return sanitize_filename_part(out)

    def prompt_no_style(self):
        if self.p is None or self.prompt is None:
            return None
        prompt_no_style = self.prompt
        styles = shared.prompt_styles  # None until startup creates it
        for style in styles.get_style_prompts(self.p.styles or []) if styles is not None else []:
            if style:
                for part in style.split("{prompt}"):
                    prompt_no_style = prompt_no_style.replace(part, "").replace(", ,", ",").strip().strip(",")
                prompt_no_style = prompt_no_style.replace(style, "").strip().strip(",").strip()
        return sanitize_filename_part(prompt_no_style, replace_spaces=False)

    def prompt_words(self):
        words = [x for x in re_nonletters.split(self.prompt or "") if x]
        if len(words) == 0:
            words = ["empty"]
        return sanitize_filename_part(" ".join(words[0:shared.opts.directories_max_prompt_words]), replace_spaces=False)

    def datetime(self, *args):
        """`[datetime]`, `[datetime<%Y%m%d>]`, `[datetime<%H%M><Europe/Paris>]`."""
        time_datetime = datetime.datetime.now()
        time_format = args[0] if (args and args[0] != "") else self.default_time_format
        try:
            from zoneinfo import ZoneInfo
            time_zone = ZoneInfo(args[1]) if len(args) > 1 else None
        except Exception:
            time_zone = None
        time_zone_time = time_datetime.astimezone(time_zone)
        try:
            formatted_time = time_zone_time.strftime(time_format)
        except (ValueError, TypeError):
            formatted_time = time_zone_time.strftime(self.default_time_format)
        return sanitize_filename_part(formatted_time, replace_spaces=False)

    def image_hash(self, *args):
        length = int(args[0]) if (args and args[0] != "") else None
        return hashlib.sha256(self.image.tobytes()).hexdigest()[0:length]

    def string_hash(self, text, *args):
        length = int(args[0]) if (args and args[0] != "") else 8
        return hashlib.sha256((text or "").encode()).hexdigest()[0:length]

    def apply(self, x):
        """Replace every known `[pattern]`; unknown ones stay as written, so a typo is visible in the name."""
        res = ""
        for m in re_pattern.finditer(x):
            text, pattern = m.groups()
            if pattern is None:
                res += text
                continue
            pattern_args = []
            while True:
                am = re_pattern_arg.match(pattern)
                if am is None:
                    break
                pattern, arg = am.groups()
                pattern_args.insert(0, arg)
            fun = self.replacements.get(pattern.lower())
            if fun is not None:
                try:
                    replacement = fun(self, *pattern_args)
                except Exception:
                    replacement = None
                    errors.report(f"Error adding [{pattern}] to filename", exc_info=True)
                if replacement is NOTHING_AND_SKIP_PREVIOUS_TEXT:
                    continue
                if replacement is not None:
                    res += text + str(replacement)
                    continue
            res += f"{text}[{pattern}]"
        return res
