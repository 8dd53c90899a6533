"""A1111's routes behind the Extra Networks cards: /sd_extra_networks/thumb (a card's preview image),
/sd_extra_networks/metadata (an item's internal metadata, for the ⓘ popup) and /sd_extra_networks/get-single-card.

A preview is served only if it is an image file inside a folder a registered page lists its models from; a path
that leads elsewhere (by "..", a link or an absolute path) is refused, so the cards never expose other files.
"""
import os

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from modules import ui_extra_networks
from webui import file_route


def _under_any(path, folders):
    return any(ui_extra_networks.path_is_parent(folder, path) for folder in folders)


def preview_file(filename):
    """The real path of an allowed preview image; raises HTTPException 403/404 naming the file."""
    if not filename or "\0" in filename:
        raise HTTPException(status_code=404, detail="No such file")
    ext = os.path.splitext(filename)[1].lower().lstrip(".")
    if ext not in ui_extra_networks.allowed_preview_extensions():
        raise HTTPException(status_code=403, detail=f"File cannot be fetched: {filename}. Only images are served.")
    folders = [os.path.abspath(x) for x in ui_extra_networks.allowed_dirs if x]
    absolute = os.path.abspath(filename)
    real = os.path.realpath(filename)
    # Both the path as written and the file it leads to must be inside the model folders.
    if not (_under_any(absolute, folders) and _under_any(real, [os.path.realpath(x) for x in folders])):
        raise HTTPException(status_code=403, detail=f"File cannot be fetched: {filename}. "
                                                    f"Must be in one of directories registered by extra pages.")
    if not os.path.isfile(real):
        raise HTTPException(status_code=404, detail=f"No such file: {filename}")
    return real


def add_routes(app):
    def thumb(request: Request, filename: str = ""):
        file_route.check_login(app, request)
        # The URL carries the file's mtime, so a changed preview gets a new URL: cache the rest.
        return FileResponse(preview_file(filename), headers={"Accept-Ranges": "bytes", "Cache-Control": "max-age=86400"})

    def metadata(request: Request, page: str = "", item: str = ""):
        file_route.check_login(app, request)
        try:
            found = ui_extra_networks.get_page_by_name(page)
        except KeyError:
            return JSONResponse({})
        data = found.metadata.get(item)
        return JSONResponse({} if data is None else {"metadata": data})

    def single_card(request: Request, page: str = "", tabname: str = "", name: str = ""):
        file_route.check_login(app, request)
        try:
            found = ui_extra_networks.get_page_by_name(page)
        except KeyError:
            raise HTTPException(status_code=404, detail=f"No extra networks page named {page!r}")
        item = found.items.get(name)
        if item is None:
            raise HTTPException(status_code=404, detail=f"The {found.title} page has no card named {name!r}")
        return JSONResponse({"html": found.create_item_html(tabname, item)})

    for path, endpoint in (("/sd_extra_networks/thumb", thumb), ("/sd_extra_networks/metadata", metadata),
                           ("/sd_extra_networks/get-single-card", single_card)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
        # Gradio's page routes were added first; move ours before any catch-all so it is matched.
        app.router.routes.insert(0, app.router.routes.pop())
