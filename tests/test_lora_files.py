"""Finding LoRA files: names, aliases, subfolders, extra folders, metadata, hashes, NAME.json and previews."""
import json
import os

import pytest
import torch

from modules import shared


@pytest.fixture
def lora_dirs(tmp_path, monkeypatch):
    """An empty --lora-dir and --lyco-dir-backcompat for this test; the networks state rescanned afterwards."""
    lora_dir, lyco_dir = tmp_path / "Lora", tmp_path / "LyCORIS"
    lora_dir.mkdir()
    lyco_dir.mkdir()
    monkeypatch.setattr(shared.cmd_opts, "lora_dir", str(lora_dir))
    monkeypatch.setattr(shared.cmd_opts, "lyco_dir_backcompat", str(lyco_dir))
    yield lora_dir, lyco_dir
    monkeypatch.undo()
    from modules.lora import networks
    networks.list_available_networks()


def write_lora(path, metadata=None, fmt="safetensors"):
    sd = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.ones(2, 32),
          "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(32, 2)}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fmt == "safetensors":
        from safetensors.torch import save_file
        save_file(sd, str(path), metadata=metadata or {})
    else:
        torch.save(sd, str(path))
    return str(path)


def test_files_are_found_by_file_name_alias_and_subfolder_path(lora_dirs):
    from modules.lora import networks
    lora_dir, lyco_dir = lora_dirs
    write_lora(lora_dir / "plain.safetensors")
    write_lora(lora_dir / "styles" / "ink.safetensors", {"ss_output_name": "inkStyleV2"})
    write_lora(lora_dir / "old.pt", fmt="pt")
    write_lora(lyco_dir / "hada.safetensors")
    networks.list_available_networks()
    assert {"plain", "ink", "old", "hada"} <= set(networks.available_networks)
    aliases = networks.available_network_aliases
    assert aliases["inkStyleV2"] is aliases["ink"] is aliases["styles/ink"]
    assert networks.available_networks["ink"].alias == "inkStyleV2"
    assert networks.available_networks["ink"].get_alias() == "inkStyleV2"
    assert networks.available_networks["old"].metadata == {}


def test_an_alias_two_files_share_is_used_by_neither(lora_dirs):
    from modules.lora import networks
    lora_dir, _ = lora_dirs
    write_lora(lora_dir / "a.safetensors", {"ss_output_name": "same"})
    write_lora(lora_dir / "b.safetensors", {"ss_output_name": "same"})
    networks.list_available_networks()
    assert networks.available_networks["a"].get_alias() == "a"
    assert networks.available_networks["b"].get_alias() == "b"


def test_preferred_name_setting_switches_the_card_name_to_the_file_name(lora_dirs, monkeypatch):
    from modules.lora import networks
    lora_dir, _ = lora_dirs
    write_lora(lora_dir / "file.safetensors", {"ss_output_name": "fromMetadata"})
    networks.list_available_networks()
    assert networks.available_networks["file"].get_alias() == "fromMetadata"
    monkeypatch.setitem(shared.opts.data, "lora_preferred_name", "Filename")
    assert networks.available_networks["file"].get_alias() == "file"


def test_version_and_hash_come_from_the_metadata(lora_dirs):
    from modules.lora import networks
    lora_dir, _ = lora_dirs
    write_lora(lora_dir / "xl.safetensors", {"ss_base_model_version": "sdxl_base_v1-0", "sshs_model_hash": "0123456789abcdef" * 4})
    write_lora(lora_dir / "v2.safetensors", {"ss_v2": "True"})
    write_lora(lora_dir / "bare.safetensors")
    networks.list_available_networks()
    assert networks.available_networks["xl"].sd_version.name == "SDXL"
    assert networks.available_networks["v2"].sd_version.name == "SD2"
    assert networks.available_networks["bare"].sd_version.name == "Unknown"
    assert networks.available_networks["xl"].shorthash == "0123456789ab"
    assert networks.available_network_hash_lookup["0123456789ab"] is networks.available_networks["xl"]


def test_short_hash_is_the_sha256_of_the_data_after_the_header(lora_dirs):
    import hashlib
    from modules.lora import networks
    lora_dir, _ = lora_dirs
    path = write_lora(lora_dir / "h.safetensors", {"note": "the header is not hashed"})
    networks.list_available_networks()
    entry = networks.available_networks["h"]
    entry.read_hash()
    data = open(path, "rb").read()
    header_len = int.from_bytes(data[:8], "little")
    assert entry.shorthash == hashlib.sha256(data[8 + header_len:]).hexdigest()[:12]


def test_listing_gives_the_card_page_everything_it_shows(lora_dirs):
    from modules.lora import lora_listing
    lora_dir, _ = lora_dirs
    path = write_lora(lora_dir / "card.safetensors", {"ss_output_name": "cardAlias", "ss_resolution": "(512, 512)"})
    (lora_dir / "card.preview.png").write_bytes(b"\x89PNG")
    (lora_dir / "card.json").write_text(json.dumps({"activation text": "ink style", "preferred weight": 0.7,
                                                    "negative text": "blurry", "description": "d"}))
    write_lora(lora_dir / "nocard.safetensors")
    (lora_dir / "nocard.json").write_text("{not json")
    entries = {e.name: e for e in lora_listing.list_loras()}
    card = entries["card"]
    assert card.alias == "cardAlias" and card.filename == path
    assert card.metadata["ss_resolution"] == "(512, 512)"
    assert card.preview == str(lora_dir / "card.preview.png")
    assert card.activation_text == "ink style" and card.preferred_weight == 0.7 and card.negative_text == "blurry"
    assert card.user_metadata["description"] == "d"
    nocard = entries["nocard"]
    assert nocard.preview is None and nocard.user_metadata == {} and nocard.preferred_weight == 0.0


def test_a1111_module_names_are_the_engine_modules_themselves():
    import modules.lora  # noqa: F401  (registers the names)
    import extra_networks_lora
    import lora
    import network
    import network_lora
    import networks
    from modules import extra_networks, patches
    from modules.lora import networks as engine_networks
    assert networks is engine_networks
    assert lora.loaded_loras is networks.loaded_networks
    assert lora.available_loras is networks.available_networks
    assert network.NetworkOnDisk is engine_networks.network.NetworkOnDisk
    assert isinstance(networks.module_types[0], network_lora.ModuleTypeLora)
    assert issubclass(extra_networks_lora.ExtraNetworkLora, extra_networks.ExtraNetwork)
    assert callable(patches.patch) and callable(patches.undo) and callable(patches.original)


def test_patches_replace_and_restore_an_attribute():
    from modules import patches

    class Target:
        def method(self):
            return "original"

    original = patches.patch("test", Target, "method", lambda self: "patched")
    assert Target().method() == "patched" and original(Target()) == "original"
    assert patches.original("test", Target, "method") is original
    with pytest.raises(RuntimeError, match="already applied"):
        patches.patch("test", Target, "method", lambda self: "twice")
    patches.undo("test", Target, "method")
    assert Target().method() == "original"
    with pytest.raises(RuntimeError, match="no patch"):
        patches.undo("test", Target, "method")
