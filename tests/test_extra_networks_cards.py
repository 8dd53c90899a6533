"""Extra Networks card pages: what each card shows and inserts, search/sort data, subfolders, the NAME.json editor's
file, and the preview route that must never serve a file outside the model folders."""
import html
import json
import os
import re
import types
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from modules import cache, sd_models, shared, ui_extra_networks, user_metadata
from modules.ui_extra_networks_checkpoints import ExtraNetworksPageCheckpoints
from modules.ui_extra_networks_hypernets import ExtraNetworksPageHypernetworks
from modules.ui_extra_networks_textual_inversion import ExtraNetworksPageTextualInversion
from webui import extra_networks_routes


class Cards(HTMLParser):
    """The cards of a page's HTML: their data-* attributes, onclick, preview src and shown name."""

    def __init__(self, text):
        super().__init__()
        self.cards, self.dirs, self._in_name = [], [], False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "div" and "card" in classes:
            self.cards.append(dict(attrs))
        elif tag == "img" and "preview" in classes and self.cards:
            self.cards[-1]["preview_src"] = attrs["src"]
        elif tag == "span" and "name" in classes:
            self._in_name = True
        elif tag == "span" and "edit-button" in classes and self.cards:
            self.cards[-1]["edit"] = attrs["onclick"]
        elif tag == "span" and "metadata-button" in classes and self.cards:
            self.cards[-1]["metadata_button"] = True
        elif tag == "button" and "extra-network-dir" in classes:
            self.dirs.append(attrs.get("data-dir"))

    def handle_data(self, data):
        if self._in_name and self.cards:
            self.cards[-1]["shown_name"] = data
            self._in_name = False

    def by_name(self, name):
        return next(c for c in self.cards if c["data-name"] == name)


def touch(path, content=b"x", mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return str(path)


def png(path, colour=(255, 0, 0)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return str(path)


def safetensors_file(path, metadata=None):
    """A small safetensors file: listing a checkpoint reads only its header, never its weights."""
    import torch
    from safetensors.torch import save_file
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({"x": torch.zeros(2)}, str(path), metadata=metadata)
    return open(path, "rb").read()


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    """models/Stable-diffusion with three checkpoints (one in a subfolder, one in a hidden folder) and a preview."""
    models = tmp_path / "models"
    sd_dir = models / "Stable-diffusion"
    monkeypatch.setattr(shared, "models_path", str(models))
    for flag, value in dict(ckpt_dir=None, ckpt=None, no_hashing=True).items():
        monkeypatch.setattr(shared.cmd_opts, flag, value, raising=False)
    monkeypatch.setenv("SD_WEBUI_CACHE_FILE", str(tmp_path / "cache.json"))
    monkeypatch.setattr(cache, "cache_data", None)
    data = safetensors_file(tmp_path / "model.safetensors", {"modelspec.title": "a model"})
    touch(sd_dir / "zebra.safetensors", data, mtime=1_000_000)
    touch(sd_dir / "anime" / "Alpha.safetensors", data, mtime=3_000_000)
    touch(sd_dir / ".secret" / "hidden.safetensors", data, mtime=2_000_000)
    png(sd_dir / "anime" / "Alpha.preview.png")
    (sd_dir / "zebra.txt").write_text("striped <b>model</b>")
    sd_models.list_models()
    yield types.SimpleNamespace(dir=sd_dir, page=ExtraNetworksPageCheckpoints())
    sd_models.checkpoints_list.clear()
    sd_models.checkpoint_aliases.clear()


def test_checkpoint_cards_show_name_preview_description_and_select_the_checkpoint(checkpoints):
    cards = Cards(checkpoints.page.create_html("txt2img"))
    assert sorted(c["data-name"] for c in cards.cards) == ["Alpha", "hidden", "zebra"]
    alpha, zebra = cards.by_name("Alpha"), cards.by_name("zebra")
    assert alpha["shown_name"] == "Alpha"
    assert alpha["preview_src"].startswith("./sd_extra_networks/thumb?filename=")
    assert "Alpha.preview.png" in alpha["preview_src"] and "preview_src" not in zebra
    # the description file is shown, escaped (a card never runs markup from a file)
    text = checkpoints.page.create_html("txt2img")
    assert "striped &lt;b&gt;model&lt;/b&gt;" in text and "<b>model</b>" not in text
    assert zebra["onclick"] == 'return selectCheckpoint("zebra.safetensors")'
    assert alpha["onclick"] == 'return selectCheckpoint("anime/Alpha.safetensors")'
    assert alpha["metadata_button"]  # the file's safetensors metadata


def test_cards_carry_search_terms_sort_keys_subfolders_and_hidden_flag(checkpoints):
    cards = Cards(checkpoints.page.create_html("txt2img"))
    alpha, zebra, hidden = cards.by_name("Alpha"), cards.by_name("zebra"), cards.by_name("hidden")
    assert "/anime/alpha.safetensors" in alpha["data-search"] and alpha["data-dir"] == "anime"
    assert zebra["data-dir"] == "" and hidden["data-hidden"] == "1" and "data-hidden" not in alpha
    assert alpha["data-sort-name"] == "alpha.safetensors" and zebra["data-sort-name"] == "zebra.safetensors"
    assert int(alpha["data-sort-date_modified"]) == 3_000_000 and int(zebra["data-sort-date_modified"]) == 1_000_000
    assert alpha["data-sort-path"].endswith("/anime/alpha.safetensors")
    assert cards.dirs == ["", ".secret", "anime"]


def test_hidden_directories_setting_leaves_their_buttons_out(checkpoints, monkeypatch):
    monkeypatch.setitem(shared.opts.data, "extra_networks_show_hidden_directories", False)
    assert Cards(checkpoints.page.create_html("txt2img")).dirs == ["", "anime"]


def test_an_empty_page_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setattr(shared.cmd_opts, "hypernetwork_dir", str(tmp_path / "hypernetworks"))
    monkeypatch.setattr(shared, "hypernetworks", {})
    text = ExtraNetworksPageHypernetworks().create_html("img2img")
    assert "Nothing here" in text and html.escape(str(tmp_path / "hypernetworks")) in text


def test_hypernetwork_card_inserts_its_tag_with_the_default_multiplier(tmp_path, monkeypatch):
    folder = tmp_path / "hypernetworks"
    monkeypatch.setattr(shared.cmd_opts, "hypernetwork_dir", str(folder))
    monkeypatch.setattr(shared, "hypernetworks", {"ink": touch(folder / "ink.pt")})
    card = Cards(ExtraNetworksPageHypernetworks().create_html("txt2img")).by_name("ink")
    assert card["onclick"] == ('return cardClicked("txt2img", "<hypernet:ink:" + opts.extra_networks_default_multiplier'
                               ' + ">", "", false)')


def test_textual_inversion_card_inserts_the_embedding_name_into_either_prompt(tmp_path, monkeypatch):
    from modules import sd_hijack
    from modules.textual_inversion.textual_inversion import Embedding
    db = sd_hijack.model_hijack.embedding_db
    folder = tmp_path / "embeddings"
    embedding = Embedding(None, "my-style")
    embedding.filename = touch(folder / "styles" / "my-style.pt")
    monkeypatch.setattr(db, "word_embeddings", {"my-style": embedding})
    monkeypatch.setattr(db, "embedding_dirs", {str(folder): None})
    user_metadata.write(embedding.filename, {"description": "an ink style"})
    page = ExtraNetworksPageTextualInversion()
    text = page.create_html("txt2img")
    card = Cards(text).by_name("my-style")
    assert card["onclick"] == 'return cardClicked("txt2img", "my-style", "", true)'
    assert card["data-dir"] == "styles" and "an ink style" in text  # the editor's description is on the card
    assert "txt2img" in card["edit"] and "textual_inversion" in card["edit"]


def test_pages_register_in_the_preferred_tab_order(monkeypatch):
    monkeypatch.setattr(ui_extra_networks, "extra_pages", [])
    ui_extra_networks.register_default_pages()
    names = [p.name for p in ui_extra_networks.extra_pages]
    assert names == ["textual inversion", "hypernetworks", "checkpoints", "lora"]
    monkeypatch.setitem(shared.opts.data, "ui_extra_networks_tab_reorder", "lora, checkp")
    assert [p.name for p in ui_extra_networks.pages_in_preferred_order(ui_extra_networks.extra_pages)] == \
        ["lora", "checkpoints", "textual inversion", "hypernetworks"]


def test_an_extension_page_registers_and_renders_with_a1111s_item_keys(tmp_path, monkeypatch):
    """What an extension's page (A1111 API) needs: subclass, list_items with A1111's item dict, register_page."""
    monkeypatch.setattr(ui_extra_networks, "extra_pages", [])
    folder = tmp_path / "wildcards"
    touch(folder / "animals.txt")

    class WildcardsPage(ui_extra_networks.ExtraNetworksPage):
        def __init__(self):
            super().__init__("Wildcards")

        def list_items(self):
            path = str(folder / "animals")
            yield {"name": "animals", "filename": path + ".txt", "preview": self.find_preview(path),
                   "search_term": self.search_terms_from_path(path + ".txt"),
                   "prompt": ui_extra_networks.quote_js("__animals__"), "local_preview": path + ".png"}

        def allowed_directories_for_previews(self):
            return [str(folder)]

    ui_extra_networks.register_page(WildcardsPage())
    assert str(folder) in ui_extra_networks.allowed_dirs
    card = Cards(ui_extra_networks.get_page_by_name("wildcards").create_html("txt2img")).by_name("animals")
    assert card["onclick"] == 'return cardClicked("txt2img", "__animals__", "", false)'


# ---- NAME.json ---------------------------------------------------------------------------------------------------

def test_user_metadata_is_written_atomically_and_keeps_other_keys(tmp_path):
    model = touch(tmp_path / "Lora" / "ink.safetensors")
    json_path = tmp_path / "Lora" / "ink.json"
    json_path.write_text(json.dumps({"sha256": "abc", "activation text": "old"}))
    written = user_metadata.write(model, {"activation text": " ink drawing ", "preferred weight": "0.7",
                                          "sd version": "SD1", "negative text": "blurry", "notes": "n"})
    on_disk = json.loads(json_path.read_text())
    assert on_disk == written
    assert on_disk == {"sha256": "abc", "activation text": "ink drawing", "preferred weight": 0.7,
                       "sd version": "SD1", "negative text": "blurry", "notes": "n"}
    assert os.listdir(tmp_path / "Lora") == ["ink.safetensors", "ink.json"] or \
        sorted(os.listdir(tmp_path / "Lora")) == ["ink.json", "ink.safetensors"]  # no temp file left


@pytest.mark.parametrize("updates, words", [({"preferred weight": "heavy"}, "preferred weight"),
                                            ({"preferred weight": "nan"}, "finite"),
                                            ({"sd version": "SD9"}, "sd version")])
def test_bad_user_metadata_is_refused_by_name_and_the_file_kept(tmp_path, updates, words):
    model = touch(tmp_path / "ink.safetensors")
    user_metadata.write(model, {"notes": "keep me"})
    with pytest.raises(ValueError, match=words):
        user_metadata.write(model, updates)
    assert json.loads((tmp_path / "ink.json").read_text()) == {"notes": "keep me"}


def test_a_damaged_json_reads_as_empty_with_a_message_naming_it(tmp_path, capsys):
    model = touch(tmp_path / "ink.safetensors")
    (tmp_path / "ink.json").write_text("{not json")
    assert user_metadata.read(model) == {}
    assert "ink.json" in capsys.readouterr().err


# ---- the preview route -------------------------------------------------------------------------------------------

@pytest.fixture
def thumb_client(tmp_path, monkeypatch):
    models = tmp_path / "models" / "Lora"
    monkeypatch.setattr(ui_extra_networks, "allowed_dirs", {str(models)})
    png(models / "sub" / "ink.preview.png")
    (tmp_path / "secret.png").write_bytes(open(models / "sub" / "ink.preview.png", "rb").read())
    (tmp_path / "secret.txt").write_text("secret")
    (models / "notes.txt").write_text("a text file in the folder")
    app = FastAPI()
    extra_networks_routes.add_routes(app)
    return TestClient(app), models, tmp_path


def test_a_preview_inside_the_model_folders_is_served(thumb_client):
    client, models, _ = thumb_client
    response = client.get("/sd_extra_networks/thumb", params={"filename": str(models / "sub" / "ink.preview.png"), "mtime": 1})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


@pytest.mark.parametrize("name", ["{models}/../../secret.png", "{outside}/secret.png", "{models}/sub/../../../secret.png",
                                  "{models}/link.png", "{models}/notes.txt", "{models}/../../secret.txt", "/etc/passwd",
                                  "secret.png"])
def test_nothing_outside_the_model_folders_and_nothing_but_images_is_served(thumb_client, name):
    client, models, outside = thumb_client
    os.symlink(outside / "secret.png", models / "link.png")
    response = client.get("/sd_extra_networks/thumb", params={"filename": name.format(models=models, outside=outside)})
    assert response.status_code in (403, 404)
    assert not response.content.startswith(b"\x89PNG") and response.content != b"secret"
    assert response.json()["detail"].startswith(("File cannot be fetched", "No such file"))


def test_metadata_route_answers_for_a_listed_item_only(checkpoints, monkeypatch):
    monkeypatch.setattr(ui_extra_networks, "extra_pages", [checkpoints.page])
    checkpoints.page.create_html("txt2img")
    app = FastAPI()
    extra_networks_routes.add_routes(app)
    client = TestClient(app)
    data = client.get("/sd_extra_networks/metadata", params={"page": "checkpoints", "item": "zebra"}).json()
    assert data == {"metadata": {"modelspec.title": "a model"}}
    assert client.get("/sd_extra_networks/metadata", params={"page": "checkpoints", "item": "nope"}).json() == {}
    card = client.get("/sd_extra_networks/get-single-card", params={"page": "checkpoints", "tabname": "img2img", "name": "zebra"})
    assert re.search(r'data-name="zebra"', card.json()["html"])
