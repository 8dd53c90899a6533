"""Network files on every model family: SDXL kohya files (lora_te1_/lora_te2_ text encoder keys, UNet keys in the
original and the diffusers names), SD2 LyCORIS files (OpenCLIP ViT-H addressed by transformers names, q/k/v as thirds
of the packed in_proj), the SDXL refiner and hires fix with a LoRA, and switching from SD1 to SDXL with a LoRA.
Each image made with tags equals the image of a checkpoint with the change baked in (same seed); taking the tags
away gives the original image bit for bit."""
import os
import shutil

import numpy as np
import pytest
import torch

from modules import processing, sd_models, shared
from tests import checkpoint_factory, network_factory


def use(path):
    """The model of checkpoint `path` as shared.sd_model: kept models are switched to, others loaded."""
    return sd_models.reload_model_weights(info=sd_models.CheckpointInfo(path))


def run(model, prompt, **kwargs):
    params = dict(sd_model=model, prompt=prompt, negative_prompt="", steps=2, cfg_scale=5, width=64, height=64, seed=41,
                  sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    return processing.process_images(processing.StableDiffusionProcessingTxt2Img(**params))


def pixels(result):
    return np.asarray(result.images[0], dtype=np.int16)


def assert_same_picture(a, b):
    """The same picture up to float rounding (a weight summed in another order differs in its last bit)."""
    assert np.abs(a - b).max() <= 2, np.abs(a - b).max()


def weights_by_checkpoint_key(model):
    """The loaded model's tensors under the checkpoint's key names (the prompt hijack's `.wrapped` levels removed)."""
    return {k.replace(".wrapped", ""): v for k, v in model.state_dict().items()}


HIRES = dict(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", denoising_strength=0.6, hr_second_pass_steps=2)
XL_CHANGES = [("xlldm", 0.7, 1.3), ("xldiff", 0.5, -0.4)]
XL_TAGS = "<lora:xlldm:0.7:1.3> <lora:xldiff:te=0.5:unet=-0.4>"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, family_checkpoints, tiny_checkpoint_path):
    """Network files for tiny SD1, SD2 and SDXL models in a --lora-dir:
    xlldm (SDXL, every layer, kohya's original-name keys), xldiff (SDXL, kohya keys with diffusers block names),
    sd2loha (SD2 LoHa, every layer), sd2lokr (SD2 LoKr, every linear layer), sd1 (SD1 LoRA)."""
    from modules import extra_networks
    from modules.lora import networks
    root = tmp_path_factory.mktemp("family-loras") / "Lora"
    shapes = {family: checkpoint_factory.build_random_family_model(checkpoint_factory.family_config(family), device="meta")
              for family in ("sdxl", "sd2")}
    shapes["sd1"] = checkpoint_factory.build_random_model()
    weights = {
        "xlldm": ("sdxl", "kohya-ldm", network_factory.lora_weights(shapes["sdxl"], seed=1)),
        "xldiff": ("sdxl", "kohya", network_factory.lora_weights(shapes["sdxl"], seed=2, alpha=4.0)),
        "sd2loha": ("sd2", "kohya", network_factory.loha_weights(shapes["sd2"], seed=3, scale=0.4)),
        "sd2lokr": ("sd2", "kohya-ldm", network_factory.lokr_weights(shapes["sd2"], seed=4, scale=0.15)),
        "sd1": ("sd1", "kohya", network_factory.lora_weights(shapes["sd1"], seed=5)),
    }
    for name, (family, naming, entries) in weights.items():
        network_factory.save_lora(root / f"{name}.safetensors", shapes[family], entries, naming=naming)
    saved_dir = shared.cmd_opts.lora_dir
    shared.cmd_opts.lora_dir = str(root)
    extra_networks.initialize()
    extra_networks.register_default_extra_networks()
    networks.list_available_networks()
    saved_limit = shared.opts.sd_checkpoints_limit
    shared.opts.data["sd_checkpoints_limit"] = 5  # the models stay loaded: switching between them reads no file
    paths = {"sd1": tiny_checkpoint_path, "sdxl": family_checkpoints("sdxl"), "sd2": family_checkpoints("sd2"),
             "sdxl_refiner": family_checkpoints("sdxl_refiner")}
    yield {"weights": {name: entries for name, (_, _, entries) in weights.items()}, "paths": paths}
    shared.cmd_opts.lora_dir = saved_dir
    shared.opts.data["sd_checkpoints_limit"] = saved_limit
    networks.load_networks([])
    networks.list_available_networks()


@pytest.fixture(scope="module")
def bake(setup, tmp_path_factory):
    """bake(family, [(network name, te multiplier, unet multiplier)]) -> path of the family's checkpoint with those
    changes added, with the original's yaml (head counts) beside it; made once per module."""
    folder, made = tmp_path_factory.mktemp("baked"), {}

    def make(family, changes):
        key = (family, tuple(changes))
        if key not in made:
            original = sd_models.read_state_dict(setup["paths"][family])
            baked = network_factory.baked_state_dict(original, [(setup["weights"][name], te, unet) for name, te, unet in changes])
            made[key] = path = str(folder / f"baked-{family}-{len(made)}.safetensors")
            checkpoint_factory.save_state_dict(baked, path)
            shutil.copy(os.path.splitext(setup["paths"][family])[0] + ".yaml", os.path.splitext(path)[0] + ".yaml")
        return made[key]
    return make


def check_every_layer_patched(model, setup, changes):
    """Each network's every key found its layer, and each targeted weight now holds checkpoint + Σ multiplier × delta."""
    from modules.lora import networks
    for net, (name, _, _) in zip(networks.loaded_networks, changes):
        assert net.name == name and net.unmatched_keys == []
        assert len(net.modules) == len(setup["weights"][name])
    original = sd_models.read_state_dict(model.sd_checkpoint_info.filename)
    expected = network_factory.baked_state_dict(original, [(setup["weights"][name], te, unet) for name, te, unet in changes])
    actual = weights_by_checkpoint_key(model)
    changed = [key for key in expected if expected[key] is not original[key]]
    assert any(".transformer.resblocks." in key for key in changed) and any("diffusion_model" in key for key in changed)
    for key in changed:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-5, atol=1e-5, msg=key)
    return original, changed


def test_sdxl_kohya_files_patch_every_layer_of_both_text_encoders_and_the_unet(setup):
    from modules.lora import networks
    model = use(setup["paths"]["sdxl"])
    networks.load_networks([c[0] for c in XL_CHANGES], [c[1] for c in XL_CHANGES], [c[2] for c in XL_CHANGES], [None, None])
    original, changed = check_every_layer_patched(model, setup, XL_CHANGES)
    assert any(k.startswith("conditioner.embedders.0.") for k in changed) and any(k.startswith("conditioner.embedders.1.") for k in changed)
    networks.load_networks([])
    actual = weights_by_checkpoint_key(model)
    assert all(torch.equal(actual[key], original[key]) for key in changed)


def test_sdxl_images_equal_the_baked_checkpoint_with_split_multipliers_and_hires_fix(setup, bake):
    model = use(setup["paths"]["sdxl"])
    plain = pixels(run(model, "a cat"))
    with_lora, with_lora_hires = pixels(run(model, "a cat " + XL_TAGS)), pixels(run(model, "a cat " + XL_TAGS, **HIRES))
    assert np.abs(with_lora - plain).max() > 20  # the LoRAs visibly change the picture
    assert np.array_equal(pixels(run(model, "a cat <lora:xlldm:0> <lora:xldiff:0:0>")), plain)
    assert np.array_equal(pixels(run(model, "a cat")), plain)

    baked = use(bake("sdxl", XL_CHANGES))
    assert_same_picture(with_lora, pixels(run(baked, "a cat")))
    assert_same_picture(with_lora_hires, pixels(run(baked, "a cat", **HIRES)))


def test_sd2_lycoris_files_patch_the_openclip_encoder_and_equal_the_baked_checkpoint(setup, bake):
    from modules.lora import networks
    model = use(setup["paths"]["sd2"])
    plain = pixels(run(model, "a cat"))
    changes = [("sd2loha", 0.8, 0.8), ("sd2lokr", 0.6, -0.5)]
    result = run(model, "a cat <lora:sd2loha:0.8> <lyco:sd2lokr:0.6:-0.5>")
    assert "Networks with errors" not in result.comments
    # the packed q/k/v of every block took its three thirds
    assert {f"model_transformer_resblocks_0_attn{s}" for s in ("_q_proj", "_k_proj", "_v_proj")} <= set(networks.loaded_networks[0].modules)
    check_every_layer_patched(model, setup, changes)
    with_lora = pixels(result)
    assert np.abs(with_lora - plain).max() > 20
    assert np.array_equal(pixels(run(model, "a cat <lora:sd2loha:0> <lyco:sd2lokr:0>")), plain)
    assert np.array_equal(pixels(run(model, "a cat")), plain)
    assert_same_picture(with_lora, pixels(run(use(bake("sd2", changes)), "a cat")))


def test_a_base_lora_leaves_the_sdxl_refiner_alone(setup, bake):
    """A1111 maps no key of an SDXL base file to the refiner's text encoder, and the refiner's UNet has other widths:
    the refiner runs as its file has it, and the image equals the baked base followed by the plain refiner."""
    from modules import loaded_models
    refiner_info = sd_models.CheckpointInfo(setup["paths"]["sdxl_refiner"])
    refiner_info.register()
    refiner = dict(refiner_checkpoint=refiner_info.title, refiner_switch_at=0.5, steps=4)
    result = run(use(setup["paths"]["sdxl"]), "a cat " + XL_TAGS, **refiner)
    assert "Refiner" in result.infotexts[0] and "Networks with errors" not in result.comments
    assert_same_picture(pixels(result), pixels(run(use(bake("sdxl", XL_CHANGES)), "a cat", **refiner)))

    refiner_model = loaded_models.find(refiner_info)
    file = sd_models.read_state_dict(refiner_info.filename)
    assert all(torch.equal(v, file[k]) for k, v in weights_by_checkpoint_key(refiner_model).items() if k in file)
    keys = refiner_model.network_layer_tables.keys
    assert not any(key.startswith(("lora_te1_", "lora_te2_")) for key in keys)
    assert "lora_te_text_model_encoder_layers_0_mlp_fc1" in keys  # a refiner file's single-encoder prefix (ComfyUI's)


def test_switching_sd1_to_sdxl_with_loras_repatches_and_restores_each_model(setup):
    """Both models kept in memory: each holds exactly the networks its last job asked for."""
    sd1 = use(setup["paths"]["sd1"])
    sd1_plain, sd1_lora = pixels(run(sd1, "a cat")), pixels(run(sd1, "a cat <lora:sd1:1>"))
    xl = use(setup["paths"]["sdxl"])
    assert shared.sd_model is xl
    xl_plain = pixels(run(xl, "a cat"))
    xl_lora = pixels(run(xl, "a cat <lora:xlldm:1>"))
    assert np.abs(xl_lora - xl_plain).max() > 20
    # an SD1 file on SDXL: its lora_te_ keys name no SDXL text encoder (as in A1111), the image is still made
    xl_file = sd_models.read_state_dict(setup["paths"]["sdxl"])
    run(xl, "a cat <lora:sd1:1>")
    te = {k: v for k, v in weights_by_checkpoint_key(xl).items() if k.startswith("conditioner.")}
    assert all(torch.equal(v, xl_file[k]) for k, v in te.items() if k in xl_file)
    assert np.array_equal(pixels(run(xl, "a cat")), xl_plain)

    assert use(setup["paths"]["sd1"]) is sd1  # kept in memory, still holding the SD1 LoRA from its last job
    assert np.array_equal(pixels(run(sd1, "a cat")), sd1_plain)
    assert np.array_equal(pixels(run(sd1, "a cat <lora:sd1:1>")), sd1_lora)
    assert use(setup["paths"]["sdxl"]) is xl
    assert np.array_equal(pixels(run(xl, "a cat <lora:xlldm:1>")), xl_lora)
