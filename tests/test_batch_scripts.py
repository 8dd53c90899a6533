"""Prompt matrix and Prompts from file, run through the public Script API on a tiny checkpoint."""
import pytest

from modules import processing, shared


def make_p(model, **kwargs):
    params = dict(sd_model=model, prompt="", steps=2, width=64, height=64, seed=7, sampler_name="Euler",
                  do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    return processing.StableDiffusionProcessingTxt2Img(**params)


def load_script(name):
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_matrix_prompt_combinations():
    module = load_script("prompt_matrix")
    parts, prompts = module.matrix_prompts("a | red | circle", put_at_start=False, delimiter=", ")
    assert parts == ["a", "red", "circle"]
    assert prompts == ["a", "a, red", "a, circle", "a, red, circle"]
    _, at_start = module.matrix_prompts("a | red | circle", put_at_start=True, delimiter=" ")
    assert at_start == ["a", "red a", "circle a", "red circle a"]


def test_prompt_matrix_makes_a_labelled_grid_of_four(tiny_model):
    module = load_script("prompt_matrix")
    script = module.Script()
    p = make_p(tiny_model, prompt="a | red | circle")
    processed = script.run(p, False, False, "positive", "comma", 0)
    assert processed.index_of_first_image == 1
    cells = processed.images[1:]
    assert len(cells) == 4
    assert processed.all_prompts == ["a", "a, red", "a, circle", "a, red, circle"]
    grid = processed.images[0]
    # 2 columns x 2 rows of 64px cells plus the label margins drawn by draw_prompt_matrix
    assert grid.width > 128 and grid.height > 128
    assert all(seed == 7 for seed in processed.all_seeds)


def test_prompts_from_file_one_image_per_line_with_overrides(tiny_model):
    module = load_script("prompts_from_file")
    script = module.Script()
    p = make_p(tiny_model, prompt="")
    text = "a red circle\n--prompt \"a blue square\" --steps 3 --seed 99 --cfg_scale 5.5 --width 128\n\n"
    processed = script.run(p, False, False, "start", text)
    assert len(processed.images) == 2
    first, second = processed.infotexts
    assert first.startswith("a red circle\n") and "Steps: 2" in first and "Seed: 7" in first
    assert second.startswith("a blue square\n")
    assert "Steps: 3" in second and "Seed: 99" in second and "CFG scale: 5.5" in second and "Size: 128x64" in second
    assert processed.images[1].size == (128, 64)


def test_prompts_from_file_rejects_unknown_options():
    module = load_script("prompts_from_file")
    with pytest.raises(ValueError, match="unknown commandline option: --bogus"):
        module.cmdargs("--bogus 3")
    assert module.cmdargs("--prompt a cat --negative_prompt ugly dog --steps 4") == {"prompt": "a cat", "negative_prompt": "ugly dog", "steps": 4}
