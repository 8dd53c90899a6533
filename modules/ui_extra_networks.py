"""Extra Networks card pages: the registry, the page base class and the cards' HTML (A1111's module name, which
extensions import to register their own pages). No gradio here: the tabs are built by webui/extra_networks_ui.py.

A page lists items (dicts with A1111's keys: name, filename, preview, description, search_terms, prompt, onclick,
sort_keys, metadata, ...) and renders them as one HTML payload: every card is a small <div> whose preview is an
<img loading="lazy">, so a page of hundreds of cards costs one request and only the previews in view are fetched.
Search, sort and the subfolder filter run in the browser (javascript/extra_networks.js) on the cards' data-*
attributes, with no round trip.
"""
import html
import itertools
import os
import urllib.parse

from modules import errors, shared, user_metadata

extra_pages = []
allowed_dirs = set()
default_allowed_preview_extensions = ["png", "jpg", "jpeg", "webp", "gif"]
_html_versions = itertools.count(1)  # each page HTML gets a new number: the browser re-applies search and sort
SORT_FIELDS = {"Default": "default", "Name": "name", "Path": "path", "Date Created": "date_created",
               "Date Modified": "date_modified"}


def find_preview_file(path):
    """The preview image file beside a model, given its path without extension: NAME.preview.EXT or NAME.EXT
    (png, jpg, jpeg, webp, gif or the images' save format), or None."""
    for ext in allowed_preview_extensions():
        for candidate in (f"{path}.preview.{ext}", f"{path}.{ext}"):
            if os.path.isfile(candidate):
                return candidate
    return None


def samples_format():
    return str(shared.opts.samples_format or "png").lower()


def allowed_preview_extensions():
    extensions = list(default_allowed_preview_extensions)
    if samples_format() not in extensions:
        extensions.append(samples_format())
    return extensions


def register_page(page):
    """Registers an extra networks page for the UI; extensions do it in an on_before_ui callback."""
    extra_pages.append(page)
    allowed_dirs.clear()
    allowed_dirs.update(set(sum([list(x.allowed_directories_for_previews()) for x in extra_pages], [])))


def get_page_by_name(extra_networks_tabname: str):
    for page in extra_pages:
        if page.extra_networks_tabname == extra_networks_tabname or page.name == extra_networks_tabname:
            return page
    raise KeyError(f"extra networks page {extra_networks_tabname!r} is not registered")


def initialize():
    extra_pages.clear()
    allowed_dirs.clear()


intialize = initialize  # A1111's older spelling, still called by some extensions


def register_default_pages():
    from modules.ui_extra_networks_checkpoints import ExtraNetworksPageCheckpoints
    from modules.ui_extra_networks_hypernets import ExtraNetworksPageHypernetworks
    from modules.ui_extra_networks_textual_inversion import ExtraNetworksPageTextualInversion
    from modules.ui_extra_networks_lora import ExtraNetworksPageLora
    register_page(ExtraNetworksPageTextualInversion())
    register_page(ExtraNetworksPageHypernetworks())
    register_page(ExtraNetworksPageCheckpoints())
    register_page(ExtraNetworksPageLora())


def pages_in_preferred_order(pages):
    """Pages sorted by the setting "Extra networks tab order" (comma-separated names), the rest as registered."""
    tab_order = [x.lower().strip() for x in str(shared.opts.ui_extra_networks_tab_reorder or "").split(",")]
    tab_order = [x for x in tab_order if x]

    def score(page):
        for i, wanted in enumerate(tab_order):
            if wanted in page.name.lower():
                return i
        return len(tab_order)

    return [page for _, _, page in sorted((score(page), index, page) for index, page in enumerate(pages))]


def quote_js(s):
    """A python string as a javascript string literal (A1111's helper for item["prompt"] expressions)."""
    s = str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{s}"'


def path_is_parent(parent_path, child_path):
    parent_path = os.path.abspath(parent_path)
    child_path = os.path.abspath(child_path)
    try:
        return os.path.commonpath([parent_path, child_path]) == parent_path
    except ValueError:
        return False


class ExtraNetworksPage:
    """One card page. Subclasses implement list_items() (or create_item) and allowed_directories_for_previews()."""

    # The user-metadata fields this page's editor shows (the Lora page adds activation text, weight, ...).
    user_metadata_fields = (user_metadata.DESCRIPTION, user_metadata.NOTES)

    def __init__(self, title):
        self.title = title
        self.name = title.lower()
        self.extra_networks_tabname = self.name.replace(" ", "_")
        self.allow_prompt = True
        self.allow_negative_prompt = False
        self.metadata = {}
        self.items = {}

    def refresh(self):
        pass

    def read_user_metadata(self, item, use_cache=True):
        filename = item.get("filename", None)
        metadata = user_metadata.read(filename)
        description = metadata.get(user_metadata.DESCRIPTION, None)
        if description is not None:
            item["description"] = description
        item["user_metadata"] = metadata

    def link_preview(self, filename):
        quoted = urllib.parse.quote(filename.replace("\\", "/"))
        return f"./sd_extra_networks/thumb?filename={quoted}&mtime={os.path.getmtime(filename)}"

    def search_terms_from_path(self, filename, possible_directories=None):
        abspath = os.path.abspath(filename)
        for parentdir in (possible_directories if possible_directories is not None else self.allowed_directories_for_previews()):
            parentdir = os.path.abspath(parentdir)
            if path_is_parent(parentdir, abspath):
                return abspath[len(parentdir):].replace("\\", "/")
        return ""

    def get_sort_keys(self, path):
        try:
            stat = os.stat(path)
            mtime, ctime = stat.st_mtime, stat.st_ctime
        except OSError:
            mtime = ctime = 0
        return {"date_created": int(ctime), "date_modified": int(mtime), "name": os.path.basename(path).lower(),
                "path": str(path).replace("\\", "/").lower()}

    def find_preview(self, path):
        """The URL of NAME.preview.EXT or NAME.EXT beside a model (path without extension), or None."""
        found = find_preview_file(path)
        return self.link_preview(found) if found is not None else None

    def find_description(self, path):
        for candidate in (f"{path}.txt", f"{path}.description.txt"):
            try:
                with open(candidate, "r", encoding="utf-8", errors="replace") as file:
                    return file.read()
            except OSError:
                pass
        return None

    def list_items(self):
        raise NotImplementedError()

    def items_for(self, names):
        """create_item for each name in order (its index is the "default" sort key), leaving out those it declines."""
        for index, name in enumerate(list(names)):
            item = self.create_item(name, index)
            if item is not None:
                yield item

    def create_item(self, name, index=None, enable_filter=True):
        raise NotImplementedError()

    def allowed_directories_for_previews(self):
        return []

    # ---- HTML ------------------------------------------------------------------------------------------------

    def item_onclick(self, tabname, item):
        onclick = item.get("onclick", None)
        if onclick is not None:
            return onclick
        prompt = item.get("prompt") or quote_js(item["name"])
        negative = item.get("negative_prompt") or quote_js("")
        allow_negative = "true" if self.allow_negative_prompt else "false"
        return html.escape(f"return cardClicked({quote_js(tabname)}, {prompt}, {negative}, {allow_negative})")

    def create_item_html(self, tabname, item, template=None):
        """One card. The onclick/prompt strings are javascript expressions (A1111's item["prompt"] convention)."""
        name = str(item["name"])
        search_terms = item.get("search_terms")
        if search_terms is None:
            search_terms = [item.get("search_term", "")]
        search_text = " ".join([name] + [str(x) for x in search_terms if x])
        sort_keys = item.get("sort_keys") or {}
        path = self.search_terms_from_path(item["filename"]) if item.get("filename") else ""
        hidden = any(part.startswith(".") for part in path.split("/")[:-1])
        attributes = {
            "class": "card", "data-name": name, "data-page": self.extra_networks_tabname,
            "data-search": search_text.lower(), "data-dir": os.path.dirname(path).strip("/"),
            "data-hidden": "1" if hidden else None,
        }
        for key, value in sort_keys.items():
            attributes[f"data-sort-{key}"] = str(value).lower() if isinstance(value, str) else str(value)
        style = ""
        if shared.opts.extra_networks_card_width:
            style += f"width: {int(shared.opts.extra_networks_card_width)}px;"
        if shared.opts.extra_networks_card_height:
            style += f"height: {int(shared.opts.extra_networks_card_height)}px;"
        attrs = " ".join(f'{key}="{html.escape(value)}"' for key, value in attributes.items() if value is not None)
        preview = item.get("preview")
        preview_html = (f'<img class="preview" loading="lazy" decoding="async" alt="" src="{html.escape(preview)}">'
                        if preview else '<div class="preview no-preview">' + html.escape(name[:1].upper()) + "</div>")
        buttons = []
        if item.get("metadata"):
            buttons.append(f'<span class="card-button metadata-button" title="Show internal metadata" '
                           f'onclick="{html.escape(f"return extraNetworksRequestMetadata(event, {quote_js(self.extra_networks_tabname)}, {quote_js(name)})")}">ⓘ</span>')
        if item.get("filename") and os.path.exists(item["filename"]):
            buttons.append(f'<span class="card-button edit-button" title="Edit metadata" '
                           f'onclick="{html.escape(f"return extraNetworksEditUserMetadata(event, {quote_js(tabname)}, {quote_js(self.extra_networks_tabname)}, {quote_js(name)})")}">🛠️</span>')
        description = item.get("description") or ""
        show_description = description and shared.opts.extra_networks_card_show_desc
        return (f'<div {attrs} style="{style}" onclick="{self.item_onclick(tabname, item)}">{preview_html}'
                f'<div class="button-row">{"".join(buttons)}</div>'
                f'<div class="actions"><span class="name">{html.escape(name)}</span>'
                + (f'<span class="description">{html.escape(description)}</span>' if show_description else "")
                + "</div></div>")

    def subdirectories(self):
        """Relative subfolders (with "/" separators) of the page's folders that hold anything, sorted."""
        found = set()
        show_hidden = shared.opts.extra_networks_show_hidden_directories
        for parentdir in self.allowed_directories_for_previews():
            parentdir = os.path.abspath(parentdir)
            for root, dirs, files in os.walk(parentdir, followlinks=True):
                if not show_hidden:
                    dirs[:] = [d for d in dirs if not d.startswith(".")]
                relative = os.path.relpath(root, parentdir).replace("\\", "/")
                if relative != "." and (files or dirs):
                    found.add(relative)
        return sorted(found, key=shared.natural_sort_key)

    def create_html(self, tabname, *, empty=False):
        """The page: its controls, subfolder buttons and every card (or a note on where to put files)."""
        self.items = {}
        self.metadata = {}
        cards = []
        if not empty:
            for item in self.list_items():
                self.items[item["name"]] = item
                if item.get("metadata"):
                    self.metadata[item["name"]] = item["metadata"]
                try:
                    cards.append(self.create_item_html(tabname, item))
                except Exception as e:
                    errors.display(e, f"making the card of {item.get('name')!r} on the {self.title} page")
        pane_id = f"{tabname}_{self.extra_networks_tabname}"
        order_field = SORT_FIELDS.get(shared.opts.extra_networks_card_order_field, "path")
        descending = shared.opts.extra_networks_card_order == "Descending"
        options = "".join(f'<option value="{value}"{" selected" if value == order_field else ""}>{label}</option>'
                          for label, value in SORT_FIELDS.items())
        dirs = "".join(f'<button class="extra-network-dir" data-dir="{html.escape(d)}">{html.escape(d)}</button>'
                       for d in (self.subdirectories() if not empty else []))
        if cards:
            body = "".join(cards)
        elif empty:
            body = ""
        else:
            folders = "".join(f"<li>{html.escape(os.path.abspath(x))}</li>" for x in self.allowed_directories_for_previews())
            body = (f"<div class='nocards'><h1>Nothing here. Add some content to the following directories:</h1>"
                    f"<ul>{folders}</ul></div>")
        return (
            f'<div class="extra-network-pane" id="{pane_id}_pane" data-tabname="{html.escape(tabname)}" '
            f'data-page="{html.escape(self.extra_networks_tabname)}" data-loaded="{"0" if empty else "1"}" '
            f'data-version="{next(_html_versions)}">'
            f'<div class="extra-network-controls">'
            f'<input type="search" class="extra-network-search" id="{pane_id}_extra_search" placeholder="Search..." '
            f'aria-label="Search {html.escape(self.title)}">'
            f'<select class="extra-network-sort" id="{pane_id}_extra_sort" aria-label="Sort by">{options}</select>'
            f'<button class="extra-network-sort-dir" id="{pane_id}_extra_sort_dir" data-descending="{int(descending)}" '
            f'title="Ascending / descending">{"↓" if descending else "↑"}</button>'
            f'<button class="extra-network-refresh" id="{pane_id}_extra_refresh" title="Refresh">🔄</button>'
            f'<span class="extra-network-count"></span></div>'
            f'<div class="extra-network-dirs" id="{pane_id}_subdirs">'
            + (f'<button class="extra-network-dir selected" data-dir="">all</button>{dirs}' if dirs else "")
            + f'</div><div class="extra-network-cards" id="{pane_id}_cards">{body}</div></div>'
        )
