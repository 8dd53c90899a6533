"""Reusing images made with LoRAs: PNG Info gives back a prompt that makes the same picture, Lora hashes find a
renamed file, and the X/Y/Z plot varies a LoRA weight through Prompt S/R."""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from modules import extra_networks, infotext_utils, processing, script_callbacks, script_loading, shared
from modules.paths_internal import script_path
from tests import checkpoint_factory, network_factory


@pytest.fixture
def lora_dir(tmp_path, tiny_model, monkeypatch):
    from modules.lora import networks
    model = checkpoint_factory.build_random_model()
    network_factory.save_lora(tmp_path / "Lora" / "ink.safetensors", model, network_factory.lora_weights(model, seed=11))
    monkeypatch.setattr(shared.cmd_opts, "lora_dir", str(tmp_path / "Lora"))
    extra_networks.initialize()
    extra_networks.register_default_extra_networks()
    networks.list_available_networks()
    yield tmp_path / "Lora"
    networks.load_networks([])
    monkeypatch.undo()
    networks.list_available_networks()


def make_p(prompt, **kwargs):
    params = dict(sd_model=shared.sd_model, prompt=prompt, negative_prompt="", steps=2, cfg_scale=5, width=64,
                  height=64, seed=21, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    return processing.StableDiffusionProcessingTxt2Img(**params)


def p_from_infotext(params):
    return make_p(params["Prompt"], negative_prompt=params["Negative prompt"], steps=int(params["Steps"]),
                  cfg_scale=float(params["CFG scale"]), seed=int(params["Seed"]), sampler_name=params["Sampler"],
                  width=int(params["Size-1"]), height=int(params["Size-2"]))


def test_png_info_round_trip_makes_the_same_picture(lora_dir, tmp_path):
    out = tmp_path / "out"
    first = processing.process_images(make_p("a red cat <lora:ink:0.7>", do_not_save_samples=False, outpath_samples=str(out)))
    saved = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith(".png")]
    text = Image.open(saved[0]).info["parameters"]
    params = infotext_utils.parse_generation_parameters(text)
    script_callbacks.infotext_pasted_callback(text, params)
    assert params["Prompt"] == "a red cat <lora:ink:0.7>"
    assert params["Lora hashes"].startswith("ink: ")
    again = processing.process_images(p_from_infotext(params))
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(first.images[0]))


def test_a_renamed_file_is_found_by_its_hash_when_pasting(lora_dir, monkeypatch):
    from modules.lora import networks
    monkeypatch.setitem(shared.opts.data, "lora_preferred_name", "Filename")  # else the metadata alias still says "ink"
    made = processing.process_images(make_p("a cat <lora:ink:1>"))
    text = made.infotexts[0]
    shutil.move(lora_dir / "ink.safetensors", lora_dir / "ink_v2.safetensors")
    networks.list_available_networks()
    networks.available_networks["ink_v2"].read_hash()  # hashed once (then cached), as after a first use
    params = infotext_utils.parse_generation_parameters(text)
    script_callbacks.infotext_pasted_callback(text, params)
    assert params["Prompt"] == "a cat <lora:ink_v2:1>"
    again = processing.process_images(p_from_infotext(params))
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(made.images[0]))


def test_additional_networks_fields_become_tags():
    from modules.lora import networks
    params = {"Prompt": "a cat", "AddNet Module 1": "LoRA", "AddNet Model 1": "ink(0123abcd)", "AddNet Weight A 1": "0.6"}
    networks.infotext_pasted("", params)
    assert params["Prompt"] == "a cat\n<lora:ink:0.6>"


def test_xyz_prompt_sr_varies_the_lora_weight(lora_dir, monkeypatch):
    xyz = script_loading.load_module(os.path.join(script_path, "scripts", "xyz_grid.py"))
    monkeypatch.setitem(shared.opts.data, "grid_save", False)
    script = xyz.Script()
    script.is_img2img = False
    processed = script.run(make_p("a cat <lora:ink:0>"), "Prompt S/R", "0, 0.5, 1", None, "Nothing", "", None,
                           "Nothing", "", None, True, True, False, False, False, False, False, 0, False)
    cells = processed.images[1:]
    assert len(cells) == 3
    for cell, infotext, weight in zip(cells, processed.infotexts[1:], ["0", "0.5", "1"]):
        assert infotext.startswith(f"a cat <lora:ink:{weight}>\n")
        single = processing.process_images(make_p(f"a cat <lora:ink:{weight}>"))
        assert cell.tobytes() == single.images[0].tobytes(), weight
    assert cells[0].tobytes() != cells[2].tobytes()
