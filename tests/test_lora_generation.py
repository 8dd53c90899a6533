"""Generating with <lora:...> tags on a tiny checkpoint: the image equals the one made by a checkpoint with the
change baked in, removing the tag (or multiplier 0) gives the original image bit for bit, and problems with a
network file are reported while the image is still made."""
import os

import numpy as np
import pytest
import torch

from modules import processing, sd_models, shared
from tests import checkpoint_factory, network_factory


def te_only(prefix):
    return prefix.startswith(network_factory.TE_PREFIX)


def unet_only(prefix):
    return prefix.startswith(network_factory.UNET_PREFIX)


@pytest.fixture(scope="module")
def lora_setup(tmp_path_factory, tiny_checkpoint_path):
    """Three LoRAs for the session's tiny checkpoint in a --lora-dir: `both` (TE + UNet, kohya diffusers names),
    `unetldm` (UNet only, original ldm names), `pefty` (TE + UNet, PEFT keys)."""
    from modules import extra_networks
    from modules.lora import networks
    root = tmp_path_factory.mktemp("loras")
    reference_model = checkpoint_factory.build_random_model()
    weights = {
        "both": network_factory.lora_weights(reference_model, seed=1),
        "unetldm": network_factory.lora_weights(reference_model, seed=2, select=unet_only, alpha=4.0),
        "pefty": network_factory.lora_weights(reference_model, seed=3, alpha=4.0),
    }
    network_factory.save_lora(root / "Lora" / "both.safetensors", reference_model, weights["both"], naming="kohya")
    network_factory.save_lora(root / "Lora" / "sub" / "unetldm.safetensors", reference_model, weights["unetldm"], naming="kohya-ldm")
    network_factory.save_lora(root / "Lora" / "pefty.safetensors", reference_model, weights["pefty"], naming="peft")
    saved_dir = shared.cmd_opts.lora_dir
    shared.cmd_opts.lora_dir = str(root / "Lora")
    extra_networks.initialize()
    extra_networks.register_default_extra_networks()
    networks.list_available_networks()
    checkpoint_sd = sd_models.read_state_dict(tiny_checkpoint_path)
    yield {"root": root, "weights": weights, "checkpoint": checkpoint_sd, "model": reference_model}
    shared.cmd_opts.lora_dir = saved_dir
    networks.load_networks([])
    networks.list_available_networks()


def run(prompt, model=None, **kwargs):
    params = dict(sd_model=model or shared.sd_model, prompt=prompt, negative_prompt="", steps=2, cfg_scale=5,
                  width=64, height=64, seed=77, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    p = processing.StableDiffusionProcessingTxt2Img(**params)
    return processing.process_images(p)


def pixels(result):
    return np.asarray(result.images[0], dtype=np.int16)


@pytest.fixture
def baked_image(tmp_path, lora_setup):
    """make(changes, prompt) -> the image of a checkpoint with the changes baked in; the tiny model is reloaded after."""
    made = []

    def make(changes, prompt="a cat"):
        path = str(tmp_path / f"baked{len(made)}.safetensors")
        sd = network_factory.baked_state_dict(lora_setup["checkpoint"], changes)
        checkpoint_factory.save_state_dict(sd, path)
        model = sd_models.load_model(sd_models.CheckpointInfo(path))
        made.append(path)
        return pixels(run(prompt, model=model))

    yield make


def assert_same_picture(a, b):
    """The same picture up to float rounding (a weight summed in another order differs in its last bit)."""
    assert np.abs(a - b).max() <= 2, np.abs(a - b).max()


def test_lora_image_equals_the_baked_checkpoint_image(tiny_model, lora_setup, baked_image):
    with_lora = pixels(run("a cat <lora:both:0.8>"))
    plain = pixels(run("a cat"))
    assert np.abs(with_lora - plain).max() > 20  # the LoRA visibly changes the picture
    assert_same_picture(with_lora, baked_image([(lora_setup["weights"]["both"], 0.8, 0.8)]))


def test_stacked_loras_with_split_multipliers_equal_the_baked_checkpoint(tiny_model, lora_setup, baked_image):
    w = lora_setup["weights"]
    stacked = pixels(run("a cat <lora:both:0.3:1.2> <lora:unetldm:0.5> <lyco:pefty:te=0.6:unet=-0.4>"))
    expected = baked_image([(w["both"], 0.3, 1.2), (w["unetldm"], 0.5, 0.5), (w["pefty"], 0.6, -0.4)])
    assert_same_picture(stacked, expected)


def test_multiplier_zero_and_removing_the_tag_give_the_original_image_bit_for_bit(tiny_model, lora_setup):
    original = pixels(run("a cat"))
    assert np.array_equal(pixels(run("a cat <lora:both:0>")), original)
    assert not np.array_equal(pixels(run("a cat <lora:both:1> <lora:pefty:0.5>")), original)
    assert np.array_equal(pixels(run("a cat")), original)
    unet = shared.sd_model.model.diffusion_model
    assert all(getattr(m, "network_weights_backup", None) is None for m in unet.modules())  # no copies kept


def test_tag_is_kept_in_the_infotext_with_the_lora_hash(tiny_model, lora_setup):
    from modules.lora import networks
    res = run("a cat <lora:both:0.8>")
    info = res.infotexts[0]
    assert info.startswith("a cat <lora:both:0.8>\n")
    entry = networks.available_networks["both"]
    assert f'Lora hashes: "both: {entry.shorthash}"' in info
    assert len(entry.shorthash) == 12


def test_changing_one_network_repatches_only_its_layers(tiny_model, lora_setup, monkeypatch):
    from modules.lora import network
    calls = []
    original = network.NetworkModule.finalize_updown

    def counting(self, *args, **kwargs):
        calls.append((self.network.name, self.sd_key))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(network.NetworkModule, "finalize_updown", counting)
    run("a cat <lora:both:1> <lora:unetldm:1>")
    calls.clear()
    run("a cat <lora:both:1> <lora:unetldm:0.5>")
    changed = {name for name, _ in calls}
    layers = {layer for _, layer in calls}
    # only the layers unetldm touches (UNet) are recomputed, with both networks; the text encoder is left alone
    assert changed == {"both", "unetldm"}
    assert all(layer.startswith("diffusion_model_") for layer in layers)
    calls.clear()
    run("a cat <lora:both:1> <lora:unetldm:0.5>")
    assert calls == []  # same networks, same multipliers: nothing to do


def test_missing_network_is_named_in_the_comments_and_the_image_is_made(tiny_model, lora_setup):
    res = run("a cat <lora:nosuchlora:1> <lora:both:0.5>")
    assert "Lora not found: nosuchlora" in res.comments
    assert len(res.images) == 1
    assert "<lora:nosuchlora:1>" in res.infotexts[0]


def test_malicious_pickle_is_refused_and_the_image_still_made(tiny_model, lora_setup):
    import pickle
    from modules.lora import networks

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    path = lora_setup["root"] / "Lora" / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"x": Evil()}, f)
    corrupt = lora_setup["root"] / "Lora" / "broken.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}garbage")
    networks.list_available_networks()
    original = pixels(run("a cat"))
    res = run("a cat <lora:evil:1> <lora:broken:1>")
    assert "Lora could not be loaded" in res.comments
    assert "evil" in res.comments and "refused" in res.comments and "broken" in res.comments
    assert np.array_equal(pixels(res), original)


def test_checkpoint_switch_applies_the_network_to_the_new_model(tiny_model, lora_setup, tmp_path):
    other = checkpoint_factory.make_tiny_sd1_checkpoint(str(tmp_path / "other.safetensors"), seed=5)
    first = pixels(run("a cat <lora:both:1>"))
    model_b = sd_models.load_model(sd_models.CheckpointInfo(other))
    b_plain = pixels(run("a cat", model=model_b))
    b_lora = pixels(run("a cat <lora:both:1>", model=model_b))
    assert not np.array_equal(b_plain, b_lora)
    assert np.array_equal(pixels(run("a cat", model=model_b)), b_plain)
    model_a = sd_models.load_model(sd_models.CheckpointInfo(lora_setup_path(tiny_model)))
    assert np.array_equal(pixels(run("a cat <lora:both:1>", model=model_a)), first)


def lora_setup_path(model):
    return model.sd_checkpoint_info.filename


def test_hires_pass_uses_the_hires_prompt_networks(tiny_model, lora_setup):
    common = dict(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", denoising_strength=0.6, hr_second_pass_steps=2)
    plain = run("a cat", **common)
    first_only = run("a cat <lora:both:1>", hr_prompt="a cat", **common)
    both = run("a cat <lora:both:1>", **common)
    assert not np.array_equal(pixels(plain), pixels(first_only))
    assert not np.array_equal(pixels(first_only), pixels(both))
    assert "<lora:both:1>" in both.infotexts[0]


def test_half_precision_delta_is_computed_in_float32(tiny_model, lora_setup):
    from modules.lora import networks
    networks.load_networks([])
    layer = shared.sd_model.model.diffusion_model.input_blocks[1][0].in_layers[2]
    original = layer.weight.detach().clone()
    try:
        layer.weight.data = original.half()
        networks.load_networks(["both"], [1.0], [0.7], [None])
        patched = layer.weight.detach().clone()
        down, up, alpha = lora_setup["weights"]["both"]["model.diffusion_model.input_blocks.1.0.in_layers.2"]
        delta = network_factory.lora_delta(down.half().float(), up.half().float(), alpha, original.shape)
        expected = (original.half().double() + 0.7 * delta).half()  # exact sum, rounded once
        assert patched.dtype == torch.float16
        # rounded once from float32: equal to the exactly rounded sum but for the odd last-bit tie
        assert (patched != expected).float().mean() < 0.01
        torch.testing.assert_close(patched, expected, rtol=1e-3, atol=1e-4)
        networks.load_networks([])
        assert torch.equal(layer.weight, original.half())
    finally:
        networks.load_networks([])
        layer.weight.data = original


def test_merging_with_a_lora_applied_merges_the_files_and_the_lora_applies_to_the_result(tiny_model, lora_setup, tmp_path):
    """The merger reads the checkpoint files, never the patched model; the merged model then takes the LoRA like any."""
    from modules import merge
    from safetensors.torch import load_file
    run("a cat <lora:both:1>")  # the loaded model now holds the LoRA
    path = tiny_model.sd_checkpoint_info.filename
    merged = merge.merge_checkpoints(path, path, method="weighted_sum", multiplier=0.5, output_path=str(tmp_path / "merged.safetensors"))
    merged_sd, original_sd = load_file(merged.filename), load_file(path)
    key = "model.diffusion_model.input_blocks.1.0.in_layers.2.weight"
    assert torch.equal(merged_sd[key], original_sd[key])
    merged_model = sd_models.load_model(sd_models.CheckpointInfo(merged.filename))
    plain = pixels(run("a cat", model=merged_model))
    assert not np.array_equal(pixels(run("a cat <lora:both:1>", model=merged_model)), plain)
    assert np.array_equal(pixels(run("a cat", model=merged_model)), plain)


def test_a_tag_with_a_bad_multiplier_is_named_and_the_others_apply(tiny_model, lora_setup):
    res = run("a cat <lora:both:lots> <lora:pefty:0.5>")
    assert "Lora tag <lora:both:lots> ignored: could not convert string to float: 'lots'" in res.comments
    assert np.array_equal(pixels(res), pixels(run("a cat <lora:pefty:0.5>")))
