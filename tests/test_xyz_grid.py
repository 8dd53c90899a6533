"""X/Y/Z plot: value ranges as the reference parses them, and a steps x sampler plot whose cells equal single images."""
import os
import re

import pytest

from modules import script_loading, shared
from modules.paths_internal import script_path

xyz = script_loading.load_module(os.path.join(script_path, "scripts", "xyz_grid.py"))


def axis(label):
    return next(o for o in xyz.axis_options if o.label == label)


@pytest.mark.parametrize("text, expected", [
    ("1-5", [1, 2, 3, 4, 5]),
    ("1-10 (+2)", [1, 3, 5, 7, 9]),
    ("10-1 (-3)", [10, 7, 4, 1]),
    ("1-3 [5]", [1, 1, 2, 2, 3]),
    ("7, 1-2, 20", [7, 1, 2, 20]),
])
def test_int_ranges(text, expected):
    assert xyz.expand_values(axis("Steps"), text) == expected


@pytest.mark.parametrize("text, expected", [
    ("1-2 (+0.5)", [1.0, 1.5, 2.0]),
    ("0-1 [3]", [0.0, 0.5, 1.0]),
    ("7.5, 3", [7.5, 3.0]),
])
def test_float_ranges(text, expected):
    assert xyz.expand_values(axis("CFG Scale"), text) == pytest.approx(expected)


def test_bad_values_name_the_axis():
    with pytest.raises(RuntimeError, match="invalid value for axis Steps"):
        xyz.expand_values(axis("Steps"), "ten")


@pytest.mark.parametrize("label, text", [("Seed", "1-3 (+0)"), ("CFG Scale", "1-2 (+0)")])
def test_a_zero_step_names_the_axis_and_the_value(label, text):
    with pytest.raises(RuntimeError, match=f"axis {label}: the step of '{re.escape(text)}' must not be zero"):
        xyz.expand_values(axis(label), text)


def test_prompt_sr_and_order():
    class P:
        prompt = "a red cat, blue sky"
        negative_prompt = "red blur"

    p = P()
    xyz.apply_prompt(p, "green", ["red", "green"])
    assert (p.prompt, p.negative_prompt) == ("a green cat, blue sky", "green blur")
    with pytest.raises(RuntimeError, match="did not find purple"):
        xyz.apply_prompt(P(), "x", ["purple", "x"])

    p = P()
    perms = xyz.expand_values(axis("Prompt order"), "cat, sky")
    assert perms == [("cat", "sky"), ("sky", "cat")]
    xyz.apply_order(p, perms[1], perms)
    assert p.prompt == "a red sky, blue cat"


def test_size_axis_and_nothing_axis():
    class P:
        width = height = 0

    p = P()
    xyz.apply_size(p, "320x256", None)
    assert (p.width, p.height) == (320, 256)
    with pytest.raises(RuntimeError, match="Invalid size"):
        xyz.apply_size(p, "big", None)
    assert xyz.expand_values(axis("Nothing"), "") == [0]


def test_extensions_add_axes_the_reference_way():
    count = len(xyz.axis_options)
    xyz.axis_options.append(xyz.AxisOption("[Ext] Thing", float, xyz.apply_field("ext_thing")))
    try:
        script = xyz.Script()
        script.is_img2img = False
        assert "[Ext] Thing" in [o.label for o in script._axis_options(False)]
        assert "Image CFG Scale" not in [o.label for o in script._axis_options(False)]
    finally:
        del xyz.axis_options[count:]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from modules import sd_models
    from tests.checkpoint_factory import make_tiny_sd1_checkpoint
    path = str(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")
    make_tiny_sd1_checkpoint(path)
    model = sd_models.load_model(sd_models.CheckpointInfo(path))
    return model if model is not None else shared.sd_model


def make_p(model, **kwargs):
    from modules import processing
    params = dict(sd_model=model, prompt="a red circle", negative_prompt="", steps=2, cfg_scale=7, width=64, height=64,
                  seed=77, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    return processing.StableDiffusionProcessingTxt2Img(**params)


def test_steps_by_sampler_cells_equal_single_images(tiny_model, monkeypatch):
    from modules import processing
    monkeypatch.setitem(shared.opts.data, "grid_save", False)
    script = xyz.Script()
    script.is_img2img = False
    processed = script.run(make_p(tiny_model), "Steps", "2, 3", None, "Sampler", "", ["Euler", "Euler a"], "Nothing", "", None,
                           True, True, False, False, False, False, False, 0, False)

    cells = processed.images[1:]
    assert len(processed.images) == 5 and len(cells) == 4
    grid = processed.images[0]
    assert grid.width > 2 * 64 and grid.height > 2 * 64  # legends around the 2x2 cells
    assert "X Type: Steps" in processed.infotexts[0] and "Y Type: Sampler" in processed.infotexts[0]

    for cell, infotext, (steps, sampler) in zip(cells, processed.infotexts[1:], [(2, "Euler"), (3, "Euler"), (2, "Euler a"), (3, "Euler a")]):
        single = processing.process_images(make_p(tiny_model, steps=steps, sampler_name=sampler))
        assert cell.tobytes() == single.images[0].tobytes(), (steps, sampler)
        assert f"Steps: {steps}, Sampler: {sampler}," in infotext
