"""What LoRA extensions do to the networks state, and that the engine follows: loractl's per-step multipliers,
lora-block-weight's scaled modules, an ExtraNetworkLora subclass, and an extension replacing a `networks`
function. They import the A1111 names (`networks`, `network`, `extra_networks_lora`), which are the engine's."""
import numpy as np
import pytest
import torch

from modules import extra_networks, processing, shared
from tests import checkpoint_factory, network_factory


@pytest.fixture(scope="module")
def one_lora(tmp_path_factory):
    root = tmp_path_factory.mktemp("ext-loras")
    model = checkpoint_factory.build_random_model()
    network_factory.save_lora(root / "style.safetensors", model, network_factory.lora_weights(model, seed=4))
    return root


@pytest.fixture
def loras(one_lora, tiny_model, monkeypatch):
    import modules.lora  # noqa: F401  (at startup, before any extension loads; registers `networks` & co.)
    import networks
    monkeypatch.setattr(shared.cmd_opts, "lora_dir", str(one_lora))
    extra_networks.initialize()
    extra_networks.register_default_extra_networks()
    networks.list_available_networks()
    yield networks
    networks.load_networks([])
    networks.networks_in_memory.clear()
    extra_networks.initialize()
    extra_networks.register_default_extra_networks()
    monkeypatch.undo()
    networks.list_available_networks()


def run(prompt, steps=3):
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=shared.sd_model, prompt=prompt, negative_prompt="", steps=steps, cfg_scale=5, width=64, height=64,
        seed=9, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    return processing.process_images(p)


def watch_layer(layer):
    """Records the layer's weight sum at each call."""
    sums = []
    handle = layer.register_forward_pre_hook(lambda m, a: sums.append(float(m.weight.double().sum())))
    return sums, handle


def test_per_step_multipliers_like_loractl_repatch_between_steps(loras):
    import network
    layer = shared.sd_model.model.diffusion_model.input_blocks[1][0].in_layers[2]
    plain_sum = float(layer.weight.double().sum())
    calls = {"n": 0}

    def unet_weight(self):
        calls["n"] += 1
        return [0.0, 1.0, 2.0][min(shared.state.sampling_step, 2)]

    # loractl: turns the attributes into properties read at each use (A1111 re-applies when they change)
    network.Network.unet_multiplier = property(unet_weight, lambda self, v: None)
    sums, handle = watch_layer(layer)
    try:
        run("a cat <lora:style:1>", steps=4)  # the UNet runs at sampling_step 0, 0, 1, 2 (set after each step)
    finally:
        handle.remove()
        del network.Network.unet_multiplier
        loras.networks_in_memory.clear()
        loras.loaded_networks.clear()
    assert calls["n"] > 0
    per_step = sorted(set(round(s, 6) for s in sums))
    assert len(per_step) == 3  # multiplier 0 (the original weights), 1 and 2 were each used for some step
    assert round(plain_sum, 6) in per_step


def test_block_weights_like_lbw_scale_modules_after_activation(loras):
    """lora-block-weight scales `up_model.weight` of some modules after activation and renames the network so A1111
    re-applies it; the UNet then runs with the scaled change."""
    import networks

    class BlockWeights:
        """An always-on script's process_batch, as lora-block-weight's."""
        def __call__(self, p):
            for net in networks.loaded_networks:
                for key, module in net.modules.items():
                    if key.startswith("diffusion_model_"):
                        module.up_model.weight = torch.nn.Parameter(module.up_model.weight * 0)
                net.name = net.name + "_in_LBW_0.5"

    te_only = run("a cat <lora:style:1:0>")
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=shared.sd_model, prompt="a cat <lora:style:1>", negative_prompt="", steps=3, cfg_scale=5, width=64,
        height=64, seed=9, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    block_weights = BlockWeights()
    original_setup_conds = p.setup_conds

    def setup_conds():  # right after the networks are activated for the batch
        block_weights(p)
        original_setup_conds()

    p.setup_conds = setup_conds
    scaled = processing.process_images(p)
    networks.networks_in_memory.clear()  # lbw's resetmemory: the scaled modules must not be reused
    assert np.abs(np.asarray(scaled.images[0], np.int16) - np.asarray(te_only.images[0], np.int16)).max() <= 2


def test_extra_network_lora_subclass_replaces_the_tag_handler(loras):
    import extra_networks_lora
    seen = []

    class Controlled(extra_networks_lora.ExtraNetworkLora):
        def activate(self, p, params_list):
            seen.append([x.items for x in params_list])
            for params in params_list:
                params.positional = [params.positional[0], 0.5]
                params.named = {}
            return super().activate(p, params_list)

    extra_networks.register_extra_network(Controlled())
    controlled = run("a cat <lora:style:1@0,0.5@3>")
    extra_networks.register_default_extra_networks()
    half = run("a cat <lora:style:0.5>")
    assert seen == [[["style", "1@0,0.5@3"]]]
    assert np.array_equal(np.asarray(controlled.images[0]), np.asarray(half.images[0]))


def test_replacing_network_apply_weights_is_obeyed(loras, monkeypatch):
    import networks
    applied = []
    original = networks.network_apply_weights

    def spy(layer):
        applied.append(layer.network_layer_name)
        return original(layer)

    monkeypatch.setattr(networks, "network_apply_weights", spy)
    networks.load_networks(["style"], [1.0], [1.0], [None])
    assert "diffusion_model_input_blocks_1_0_in_layers_2" in applied
    assert "transformer_text_model_encoder_layers_0_self_attn_q_proj" in applied


def test_layers_carry_a1111_names_and_modules_expose_their_factors(loras):
    """composable-lora style: a layer's `network_layer_name` finds its module in each loaded network, whose
    up/down models compute the LoRA branch for an input."""
    import networks
    networks.load_networks(["style"], [1.0], [1.0], [None])
    layer = shared.sd_model.model.diffusion_model.input_blocks[3][1].transformer_blocks[0].attn1.to_q
    assert layer.network_layer_name == "diffusion_model_input_blocks_3_1_transformer_blocks_0_attn1_to_q"
    assert shared.sd_model.network_layer_mapping[layer.network_layer_name] is layer
    module = networks.loaded_networks[0].modules[layer.network_layer_name]
    x = torch.randn(2, layer.in_features)
    branch = module.up_model(module.down_model(x)) * module.calc_scale() * module.multiplier()
    torch.testing.assert_close(layer(x), x @ layer.network_weights_backup.T + branch, rtol=1e-4, atol=1e-5)
