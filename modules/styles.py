"""Prompt styles: named prompt / negative-prompt snippets kept in styles.csv and applied from the styles picker.

A style's text is merged into a prompt at its `{prompt}` placeholder, or appended after ", " when it has none.
Pasted infotext can be turned back into "prompt + styles" by `extract_styles_from_prompt`.
"""
from __future__ import annotations

import csv
import fnmatch
import os
import typing

from modules import errors


class PromptStyle(typing.NamedTuple):
    name: str
    prompt: str | None
    negative_prompt: str | None
    path: str | None = None


def merge_prompts(style_prompt: str, prompt: str) -> str:
    """The style's text with the prompt at `{prompt}`, or "prompt, style" (empty parts dropped)."""
    if "{prompt}" in style_prompt:
        return style_prompt.replace("{prompt}", prompt)
    return ", ".join(part for part in (prompt.strip(), style_prompt.strip()) if part)


def apply_styles_to_prompt(prompt, styles):
    """Applies style texts in order: each one wraps (or is appended to) the result of the previous ones."""
    for style in styles:
        prompt = merge_prompts(style, prompt)
    return prompt


def extract_style_text_from_prompt(style_text, prompt):
    """(True, prompt without the style's text) if the prompt ends with / is wrapped by it, else (False, prompt)."""
    stripped_prompt = prompt.strip()
    stripped_style_text = style_text.strip()

    if "{prompt}" in stripped_style_text:
        left, _, right = stripped_style_text.partition("{prompt}")
        if stripped_prompt.startswith(left) and stripped_prompt.endswith(right) and len(stripped_prompt) >= len(left) + len(right):
            return True, stripped_prompt[len(left):len(stripped_prompt) - len(right)]
    elif stripped_prompt.endswith(stripped_style_text):
        rest = stripped_prompt[:len(stripped_prompt) - len(stripped_style_text)]
        if rest.endswith(", "):
            rest = rest[:-2]
        return True, rest

    return False, prompt


def extract_original_prompts(style: PromptStyle, prompt, negative_prompt):
    """If both prompts contain the style, the prompts without it; otherwise (False, prompt, negative_prompt)."""
    if not style.prompt and not style.negative_prompt:
        return False, prompt, negative_prompt

    match_positive, extracted_positive = extract_style_text_from_prompt(style.prompt or "", prompt)
    if not match_positive:
        return False, prompt, negative_prompt

    match_negative, extracted_negative = extract_style_text_from_prompt(style.negative_prompt or "", negative_prompt)
    if not match_negative:
        return False, prompt, negative_prompt

    return True, extracted_positive, extracted_negative


class StyleDatabase:
    """Styles from one or more CSV files (columns name, prompt, negative_prompt); the first file is the default
    one new styles are saved to. `paths` may contain wildcards (as --styles-file does)."""

    def __init__(self, paths=None):
        if paths is None:
            from modules import shared
            paths = [os.path.join(shared.data_path, "styles.csv")]
        elif isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.no_style = PromptStyle("None", "", "", None)
        self.styles: dict[str, PromptStyle] = {}
        self.paths = [str(p) for p in paths]
        self.all_styles_files: list[str] = []
        self.default_path = self.paths[0] if self.paths else None
        self.prompt_fields = [field for field in PromptStyle._fields if field != "path"]
        self.reload()

    def reload(self):
        """Re-reads every styles file; a broken file is reported by name and the others still load."""
        self.styles.clear()
        self.all_styles_files = self._expand_paths()
        for path in self.all_styles_files:
            try:
                self.load_from_csv(path)
            except Exception:
                errors.report(f"Error reading styles file {path} (its styles are not loaded)", exc_info=True)

    def _expand_paths(self):
        found = []
        for path in self.paths:
            folder, pattern = os.path.split(path)
            if any(ch in pattern for ch in "*?["):
                if os.path.isdir(folder or "."):
                    found += [os.path.join(folder, f) for f in sorted(os.listdir(folder or ".")) if fnmatch.fnmatch(f, pattern)]
            else:
                found.append(path)
        return found

    def load_from_csv(self, path):
        if not os.path.exists(path):
            return
        with open(path, "r", encoding="utf-8-sig", newline="") as file:
            for row in csv.DictReader(file, skipinitialspace=True):
                name = (row.get("name") or "").strip()
                if not name:
                    continue
                # very old files call the prompt column "text"
                prompt = row["prompt"] if "prompt" in row else row.get("text", "")
                self.styles[name] = PromptStyle(name, prompt or "", row.get("negative_prompt") or "", str(path))

    def get_style_paths(self) -> set:
        """Files that hold at least one style, plus the default file."""
        paths = {style.path for style in self.styles.values() if style.path}
        if self.default_path:
            paths.add(self.default_path)
        return paths

    def get_style_prompts(self, styles):
        return [self.styles.get(x, self.no_style).prompt for x in styles or []]

    def get_negative_style_prompts(self, styles):
        return [self.styles.get(x, self.no_style).negative_prompt for x in styles or []]

    def apply_styles_to_prompt(self, prompt, styles):
        return apply_styles_to_prompt(prompt, self.get_style_prompts(styles))

    def apply_negative_styles_to_prompt(self, prompt, styles):
        return apply_styles_to_prompt(prompt, self.get_negative_style_prompts(styles))

    def save_style(self, name, prompt, negative_prompt, path=None):
        """Adds or replaces a style and saves its file."""
        name = (name or "").strip()
        if not name:
            raise ValueError("style name: a style needs a name")
        existing = self.styles.get(name)
        path = path or (existing.path if existing is not None else None) or self.default_path
        self.styles[name] = PromptStyle(name, prompt or "", negative_prompt or "", path)
        self.save_styles()

    def delete_style(self, name):
        if self.styles.pop(name, None) is not None:
            self.save_styles()

    def save_styles(self, path=None) -> None:
        """Writes every styles file (atomically: a failed write never loses the old file)."""
        for style_path in self.get_style_paths() if path is None else {path}:
            rows = [s for s in self.styles.values() if (s.path or self.default_path) == style_path]
            folder = os.path.dirname(style_path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            tmp_path = style_path + ".tmp"
            with open(tmp_path, "w", encoding="utf-8-sig", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.prompt_fields)
                writer.writeheader()
                writer.writerows({"name": s.name, "prompt": s.prompt, "negative_prompt": s.negative_prompt} for s in rows)
            os.replace(tmp_path, style_path)

    def extract_styles_from_prompt(self, prompt, negative_prompt):
        """(style names found, prompt without them, negative prompt without them), for pasted infotext.
        Styles are peeled off from the outside in, so the names come back in the order they were applied."""
        extracted = []
        applicable = list(self.styles.values())

        while True:
            found = None
            for style in applicable:
                is_match, new_prompt, new_negative = extract_original_prompts(style, prompt, negative_prompt)
                if is_match:
                    found = style
                    prompt, negative_prompt = new_prompt, new_negative
                    break
            if found is None:
                break
            applicable.remove(found)
            extracted.append(found.name)

        return list(reversed(extracted)), prompt, negative_prompt
