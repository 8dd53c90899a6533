"""The javascript and css that go into the page: ours first, then each active extension's, in A1111's order."""
import json
import os

from modules import extensions

WEBUI_DIR = os.path.dirname(os.path.abspath(__file__))


def _read(path):
    with open(path, encoding="utf8") as file:
        return file.read()


def our_scripts():
    folder = os.path.join(WEBUI_DIR, "javascript")
    return [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith((".js", ".mjs"))]


def extension_assets():
    """(javascript files, css files, localization dict) from active extensions."""
    return extensions.collect_ui_assets()


def options_json():
    """(extension-compat) Every setting's current value as JSON, for A1111's page-global `opts` that extensions'
    javascript reads (tag autocomplete reads its tac_* settings there); values JSON cannot hold are left out."""
    from modules import shared
    values = {}
    for key, info in shared.opts.data_labels.items():
        value = shared.opts.data.get(key, getattr(info, "default", None))
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        values[key] = value
    return json.dumps(values).replace("</", "<\\/")


def head_html():
    """Inline <script> tags: file URLs need gradio's allowed paths, inlining always works."""
    ext_js, _, localization = extension_assets()
    parts = [f"<script>window.localization = {json.dumps(localization)};</script>",
             f"<script>window.opts = {options_json()};</script>"]
    for path in our_scripts() + list(ext_js):
        try:
            kind = ' type="module"' if path.endswith(".mjs") else ""
            parts.append(f"<script{kind} data-source={json.dumps(os.path.basename(path))}>\n{_read(path)}\n</script>")
        except OSError:
            continue
    return "\n".join(parts)


def page_css():
    _, ext_css, _ = extension_assets()
    css = [_read(os.path.join(WEBUI_DIR, "style.css"))]
    for path in ext_css:
        try:
            css.append(_read(path))
        except OSError:
            continue
    return "\n".join(css)
