"""The Lora card page: what a LoRA card inserts (alias, preferred weight, activation text, negative text), which
LoRAs it shows for the loaded model, its training metadata on request, and the editor's NAME.json changing the card."""
import json
import os
import types

import gradio as gr
import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from safetensors.torch import save_file

from modules import shared, ui_extra_networks
from modules.lora import networks
from modules.ui_extra_networks_lora import ExtraNetworksPageLora
from tests.test_extra_networks_cards import Cards
from webui import extra_networks_routes, extra_networks_ui


def lora_file(path, **metadata):
    """A small kohya-layout LoRA file (the page reads only its header)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({"lora_unet_input_blocks_1_1_proj_in.lora_down.weight": torch.zeros(2, 4),
               "lora_unet_input_blocks_1_1_proj_in.lora_up.weight": torch.zeros(4, 2),
               "lora_unet_input_blocks_1_1_proj_in.alpha": torch.tensor(2.0)}, str(path),
              metadata={k: str(v) for k, v in metadata.items()} or None)
    return str(path)


@pytest.fixture
def loras(tmp_path, monkeypatch):
    models = tmp_path / "models"
    lora_dir = models / "Lora"
    monkeypatch.setattr(shared, "models_path", str(models))
    monkeypatch.setattr(shared.cmd_opts, "lora_dir", str(lora_dir))
    monkeypatch.setattr(shared.cmd_opts, "lyco_dir_backcompat", str(models / "LyCORIS"))
    monkeypatch.setattr(shared, "sd_model", types.SimpleNamespace(is_sdxl=False, is_sd2=False))
    ink = lora_file(lora_dir / "styles" / "ink.safetensors", ss_output_name="inkAlias", ss_base_model_version="sd_v1",
                    ss_tag_frequency=json.dumps({"set": {"ink": 12, "sketch": 3}}))
    with open(lora_dir / "styles" / "ink.json", "w") as f:
        json.dump({"activation text": "ink style", "preferred weight": 0.7, "negative text": "blurry"}, f)
    lora_file(lora_dir / "plain.safetensors", ss_base_model_version="sd_v1")
    lora_file(lora_dir / "big.safetensors", ss_base_model_version="sdxl_base_v1-0")
    lora_file(lora_dir / "mystery.safetensors")  # no training metadata: version unknown
    networks.list_available_networks()
    yield types.SimpleNamespace(dir=lora_dir, ink=ink, page=ExtraNetworksPageLora())
    networks.available_networks.clear()


def test_a_lora_card_inserts_alias_preferred_weight_activation_and_negative_text(loras):
    cards = Cards(loras.page.create_html("txt2img"))
    ink, plain = cards.by_name("ink"), cards.by_name("plain")
    assert ink["onclick"] == ('return cardClicked("txt2img", "<lora:inkAlias:" + 0.7 + ">" + " ink style", '
                              '"(blurry:1)", false)')
    assert plain["onclick"] == ('return cardClicked("txt2img", "<lora:plain:" + opts.extra_networks_default_multiplier'
                                ' + ">", "", false)')
    assert "inkalias" in ink["data-search"] and "/styles/ink.safetensors" in ink["data-search"]
    assert ink["data-dir"] == "styles" and ink["metadata_button"]


def test_the_filename_setting_makes_cards_use_file_names(loras, monkeypatch):
    monkeypatch.setitem(shared.opts.data, "lora_preferred_name", "Filename")
    assert '"<lora:ink:"' in Cards(loras.page.create_html("txt2img")).by_name("ink")["onclick"]


def test_loras_for_another_model_family_are_left_off_unless_all_are_shown(loras, monkeypatch):
    names = sorted(c["data-name"] for c in Cards(loras.page.create_html("txt2img")).cards)
    assert names == ["ink", "mystery", "plain"]  # SD1 model: the SDXL LoRA is hidden, the unknown one shown
    monkeypatch.setitem(shared.opts.data, "lora_hide_unknown_for_versions", ["SD1"])
    assert "mystery" not in [c["data-name"] for c in Cards(loras.page.create_html("txt2img")).cards]
    monkeypatch.setitem(shared.opts.data, "lora_show_all", True)
    assert len(Cards(loras.page.create_html("txt2img")).cards) == 4
    monkeypatch.setitem(shared.opts.data, "lora_show_all", False)
    with open(loras.dir / "big.json", "w") as f:
        json.dump({"sd version": "SD1"}, f)  # the user says it is for SD1
    assert "big" in [c["data-name"] for c in Cards(loras.page.create_html("txt2img")).cards]


def test_training_metadata_is_shown_on_request(loras, monkeypatch):
    monkeypatch.setattr(ui_extra_networks, "extra_pages", [loras.page])
    loras.page.create_html("txt2img")
    app = FastAPI()
    extra_networks_routes.add_routes(app)
    data = TestClient(app).get("/sd_extra_networks/metadata", params={"page": "lora", "item": "ink"}).json()
    assert data["metadata"]["ss_output_name"] == "inkAlias"
    assert data["metadata"]["ss_tag_frequency"] == {"set": {"ink": 12, "sketch": 3}}


def test_the_editor_writes_name_json_and_the_card_then_inserts_the_new_text_and_weight(loras, monkeypatch):
    monkeypatch.setattr(ui_extra_networks, "extra_pages", [loras.page])
    with gr.Blocks():
        with gr.Tabs():
            ui = extra_networks_ui.create_ui("txt2img")
        extra_networks_ui.setup_ui(ui, types.SimpleNamespace(checkpoint_dropdown=None, checkpoint_selector=None))
    loras.page.create_html("txt2img")
    editor = ui.editor
    opened = editor.open("lora\nplain")
    assert opened[0]["visible"] is True and "plain.safetensors" in opened[1]
    fields = dict(zip(editor_fields(), opened[3:]))
    assert all(update["visible"] for update in fields.values())  # a LoRA shows every field
    values = {"description": "flat colours", "sd version": "SD1", "activation text": "flat style",
              "preferred weight": 0.6, "negative text": "noise", "notes": "mine"}
    result = editor.save_fields("lora\nplain", *[values[f] for f in editor_fields()])
    assert result[0]["visible"] is False
    with open(loras.dir / "plain.json", encoding="utf8") as f:
        assert json.load(f) == values
    card = Cards(result[2]).by_name("plain")
    assert card["onclick"] == ('return cardClicked("txt2img", "<lora:plain:" + 0.6 + ">" + " flat style", '
                               '"(noise:1)", false)')
    # a bad weight is refused with a message naming it, and nothing is written
    refused = editor.save_fields("lora\nplain", *[dict(values, **{"preferred weight": "heavy"})[f] for f in editor_fields()])
    assert "preferred weight" in refused[1]
    with open(loras.dir / "plain.json", encoding="utf8") as f:
        assert json.load(f)["preferred weight"] == 0.6


def editor_fields():
    from webui.extra_networks_editor import EDITED_FIELDS
    return EDITED_FIELDS


def test_the_lora_page_is_a_default_page_and_importable_by_its_a1111_name(monkeypatch):
    monkeypatch.setattr(ui_extra_networks, "extra_pages", [])
    ui_extra_networks.register_default_pages()
    assert [p.title for p in ui_extra_networks.extra_pages][-1] == "Lora"
    import ui_extra_networks_lora
    assert ui_extra_networks_lora.ExtraNetworksPageLora is ExtraNetworksPageLora
