"""Prompt comments: `#` to the end of the line is removed before the prompt is used (A1111's built-in script)."""
import re

_re_comment_line = re.compile(r"(^|\n)#[^\n]*(\n|$)")
_re_comment = re.compile(r"#[^\n]*(\n|$)")


def strip_comments(text: str) -> str:
    """Whole comment lines vanish with their newline; a trailing comment leaves the line's end (A1111's regexes)."""
    if not text:
        return text
    text = _re_comment_line.sub("\n", text)
    text = _re_comment.sub("\n", text)
    return text
