"""Gradio 3's `/file=<path>` route, which extensions' javascript fetches (tag autocomplete reads its tag lists so).

Gradio 6 serves files elsewhere (under /gradio_api), so the old relative URLs `file=tmp/x.txt` and
`file=/abs/path/extensions/ext/tags/a.csv` would 404. This route serves them, but only from folders meant for
the page: the extensions folders, the outputs and tmp folders (of the data dir, and the web UI root's tmp/ where
A1111 extensions write their temp files), and the javascript folders. Anything else is 403. Relative paths
resolve against the web UI root first (A1111 runs from there), then the data dir.
"""
import mimetypes
import os

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse


def allowed_roots():
    from modules import extensions, paths_internal, shared
    roots = [
        extensions.extensions_dir, extensions.extensions_builtin_dir,
        os.path.join(paths_internal.data_path, "outputs"), os.path.join(paths_internal.data_path, "tmp"),
        os.path.join(paths_internal.script_path, "tmp"),
        os.path.join(paths_internal.script_path, "javascript"), os.path.join(paths_internal.script_path, "webui", "javascript"),
    ]
    # Output folders the user set elsewhere in Settings are served too (A1111 shows saved images from there).
    for key in ("outdir_samples", "outdir_txt2img_samples", "outdir_img2img_samples", "outdir_extras_samples",
                "outdir_grids", "outdir_txt2img_grids", "outdir_img2img_grids", "outdir_save", "temp_dir"):
        value = getattr(shared.opts, key)
        if value:
            roots.append(shared.data_relative(value))
    return [os.path.realpath(r) for r in roots if r]


def _candidates(path):
    from modules import paths_internal
    if os.path.isabs(path):
        return [path]
    return [os.path.join(paths_internal.script_path, path), os.path.join(paths_internal.data_path, path)]


def _is_under(path, root):
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False


def resolve(path):
    """The real path of an allowed, existing file for a `file=` request; raises HTTPException 403/404."""
    if not path or "\0" in path:
        raise HTTPException(status_code=404, detail="No such file")
    roots = allowed_roots()
    allowed_but_missing = False
    for candidate in _candidates(path):
        real = os.path.realpath(candidate)
        if not any(_is_under(real, root) for root in roots):
            continue
        if os.path.isfile(real):
            return real
        allowed_but_missing = True
    if allowed_but_missing:
        raise HTTPException(status_code=404, detail=f"No such file: {path}")
    raise HTTPException(status_code=403, detail=f"File not allowed: {path}")


def check_login(app, request):
    """Same rule as Gradio's own routes: with --gradio-auth, only a logged-in browser may read files."""
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return
    cookie_id = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(f"access-token-unsecure-{cookie_id}")
    if getattr(app, "tokens", {}).get(token) is None:
        raise HTTPException(status_code=401, detail="Not authenticated")


def add_route(app):
    """Register GET/HEAD /file=<path> on the FastAPI app the web UI runs on."""
    def serve_file(path: str, request: Request):
        check_login(app, request)
        real = resolve(path)
        media_type = mimetypes.guess_type(real)[0] or "application/octet-stream"
        return FileResponse(real, media_type=media_type, headers={"Cache-Control": "no-cache"})

    app.add_api_route("/file={path:path}", serve_file, methods=["GET", "HEAD"], include_in_schema=False)
    # Gradio's page routes were added first; move ours before any catch-all so it is matched.
    route = app.router.routes.pop()
    app.router.routes.insert(0, route)
