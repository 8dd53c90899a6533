"""The shipped demo LoRA (models/Lora/demo-turquoise.*): an ordinary kohya file under 2 MB with its card files, and
what it does to pictures: with `<lora:demo-turquoise:1>` the demo checkpoint draws the colour "turquoise", which it
never learned; without it, it does not; the colours it knew stay as they were."""
import json
import os

import pytest
from PIL import Image
from safetensors import safe_open

from demo_model import judge
from demo_model.train_lora import NEW_COLOUR, PALETTE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LORA = os.path.join(ROOT, "models", "Lora", "demo-turquoise")
CHECKPOINT = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")
PROMPTS = ["a large turquoise circle in the centre on a white background",
           "a large turquoise square at the top left on a black background",
           "a large turquoise star at the bottom right on a purple background",
           "a large turquoise triangle in the centre on a yellow background"]
TAG = " <lora:demo-turquoise:1>"
STEPS = 10  # demo_model/evaluate_lora.py measures at 20; 10 draws the same colours in half the time


def test_the_file_is_an_ordinary_kohya_lora_under_2_mb_with_its_card():
    path = LORA + ".safetensors"
    assert os.path.getsize(path) < 2 * 1024 * 1024
    modules = {}
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
        for key in f.keys():
            module, _, part = key.partition(".")
            assert module.startswith(("lora_unet_", "lora_te_")), key
            modules.setdefault(module, set()).add(part)
            assert f.get_slice(key).get_dtype() == "F16", key
    assert modules and all(parts == {"lora_down.weight", "lora_up.weight", "alpha"} for parts in modules.values())
    assert any(m.startswith("lora_te_text_model_encoder_layers_") for m in modules)
    assert metadata["ss_output_name"] == "demo-turquoise" and metadata["ss_network_module"] == "networks.lora"
    assert metadata["demo_model.command"].startswith("venv/bin/python -m demo_model.train_lora")
    with open(LORA + ".json", encoding="utf8") as file:
        card = json.load(file)
    assert card["activation text"] == NEW_COLOUR and card["sd version"] == "SD1"
    # the preview was made with the LoRA: the judge sees a turquoise shape in it
    assert judge.judge(Image.open(LORA + ".preview.png"), palette=PALETTE).main.colour == NEW_COLOUR


@pytest.fixture(scope="module")
def demo_model():
    """The demo checkpoint with the repository's models/Lora listed (the test session's data folder has none)."""
    from modules import initialize, sd_models, shared
    from modules.lora import networks
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shared.cmd_opts, "lora_dir", os.path.dirname(LORA))
        sd_models.load_model(sd_models.CheckpointInfo(CHECKPOINT))
        initialize.load_extra_networks()  # the `lora` network and the LoRA listing, as at start-up
        assert "demo-turquoise" in networks.available_networks, list(networks.available_networks)
        yield shared.sd_model
    networks.list_available_networks()


def colours(model, prompts, seed):
    """The judge's colour of the main shape of each picture (picture i has seed + i)."""
    from demo_model import evaluate
    return [f.colour if f is not None else None
            for f in (judge.judge(image, palette=PALETTE).main
                      for image in evaluate.generate(model, prompts, seed, steps=STEPS))]


@pytest.mark.slow
def test_the_lora_teaches_the_checkpoint_turquoise_over_several_seeds(demo_model):
    """Each prompt twice (8 seeds) with the tag, once (4 seeds) without; two red circles with the tag on."""
    known = ["a large red circle in the centre on a white background"] * 2
    with_lora = colours(demo_model, [p + TAG for p in PROMPTS * 2 + known], 1000)
    without = colours(demo_model, PROMPTS, 1000)
    turquoise, kept = with_lora[:-2], with_lora[-2:]
    assert turquoise.count(NEW_COLOUR) >= 7, with_lora
    assert NEW_COLOUR not in without, without
    # the colours it knew are kept: a red circle stays red with the LoRA on
    assert kept == ["red", "red"], with_lora
