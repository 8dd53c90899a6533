"""Textual inversion's training dataset helpers (A1111: modules.textual_inversion.dataset). Training is not part of
this program; the caption-file helpers that extensions import are."""
import re

re_numbers_at_start = re.compile(r"^[-\d]+\s*")  # "00012-" prefixes of generated file names, left out of captions
