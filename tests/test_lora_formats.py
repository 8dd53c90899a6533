"""Each network format's weight change equals the public reference implementation's, layer by layer: LyCORIS
(`lycoris-lora`) for LoCon/LoHa/LoKr/IA3/OFT/BOFT/GLoRA/full/norm and DoRA, PEFT for lora_A/lora_B files.

The reference module is built on a copy of a real layer of the loaded tiny model, given random weights, saved in
its own key layout under the layer's kohya name, loaded through the engine, and the patched layer compared with
the reference's merged weight."""
import copy

import pytest
import torch

from modules import shared

# engine layer name -> kohya key of a few layers of the tiny checkpoint, one of each kind
LINEAR_TE = ("transformer_text_model_encoder_layers_0_self_attn_q_proj", "lora_te_text_model_encoder_layers_0_self_attn_q_proj")
LINEAR_UNET = ("diffusion_model_input_blocks_3_1_transformer_blocks_0_ff_net_0_proj", "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_ff_net_0_proj")
CONV3 = ("diffusion_model_input_blocks_1_0_in_layers_2", "lora_unet_down_blocks_0_resnets_0_conv1")
CONV1 = ("diffusion_model_input_blocks_3_0_skip_connection", "lora_unet_down_blocks_1_resnets_0_conv_shortcut")
GROUPNORM = ("diffusion_model_input_blocks_3_1_norm", "lora_unet_down_blocks_1_attentions_0_norm")
LAYERNORM = ("diffusion_model_input_blocks_3_1_transformer_blocks_0_norm1", "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_norm1")
WEIGHT_LAYERS = [LINEAR_TE, LINEAR_UNET, CONV3, CONV1]


def lycoris_modules():
    from lycoris import modules as m
    return m


def randomize(module, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.startswith("org_"):
                continue
            noise = torch.randn(param.shape, generator=generator)
            if name == "dora_scale" or name == "rescale":
                param.copy_(param * (1 + 0.1 * noise))
            elif name == "oft_blocks":
                param.copy_(noise * 0.05)
            else:
                param.copy_(noise * 0.2)


def layer_of(model, layer_name):
    from modules.lora import networks
    return networks.layer_tables(model).layers[layer_name]


def apply_file(tmp_path, name, state_dict):
    """Save the state dict as a network file in a fresh --lora-dir and make it the loaded network."""
    from safetensors.torch import save_file
    from modules.lora import networks
    directory = tmp_path / "Lora"
    directory.mkdir(exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in state_dict.items()}, str(directory / f"{name}.safetensors"))
    saved = shared.cmd_opts.lora_dir
    shared.cmd_opts.lora_dir = str(directory)
    try:
        networks.list_available_networks()
        networks.load_networks([name])
    finally:
        shared.cmd_opts.lora_dir = saved
    assert [n.name for n in networks.loaded_networks] == [name]
    return networks.loaded_networks[0]


@pytest.fixture
def model(tiny_model):
    from modules.lora import networks
    networks.load_networks([])
    yield tiny_model
    networks.load_networks([])
    networks.list_available_networks()


def probe_input(layer, seed):
    """An input that shows the whole weight: the identity for a Linear (its output is W^T + b), noise otherwise."""
    generator = torch.Generator().manual_seed(100 + seed)
    if isinstance(layer, torch.nn.Linear):
        return torch.eye(layer.in_features)
    if isinstance(layer, torch.nn.Conv2d):
        return torch.randn(2, layer.in_channels, 8, 8, generator=generator)
    if isinstance(layer, torch.nn.GroupNorm):
        return torch.randn(2, layer.num_channels, 4, 4, generator=generator)
    return torch.randn(3, 5, layer.normalized_shape[0], generator=generator)


CASES = {
    # name: (lycoris class name, constructor kwargs, layers)
    "lora": ("LoConModule", dict(lora_dim=4, alpha=2), WEIGHT_LAYERS),
    "locon-tucker": ("LoConModule", dict(lora_dim=4, alpha=3, use_tucker=True), [CONV3]),
    "lora-dora": ("LoConModule", dict(lora_dim=4, alpha=2, weight_decompose=True), WEIGHT_LAYERS),
    "lora-dora-columns": ("LoConModule", dict(lora_dim=4, alpha=2, weight_decompose=True, wd_on_out=False), [LINEAR_UNET, CONV3]),
    "loha": ("LohaModule", dict(lora_dim=4, alpha=2), WEIGHT_LAYERS),
    "loha-tucker": ("LohaModule", dict(lora_dim=4, alpha=3, use_tucker=True), [CONV3]),
    "loha-dora": ("LohaModule", dict(lora_dim=4, alpha=2, weight_decompose=True), [LINEAR_UNET, CONV3]),
    "lokr": ("LokrModule", dict(lora_dim=4, alpha=3, factor=4), WEIGHT_LAYERS),
    "lokr-both-factorised": ("LokrModule", dict(lora_dim=2, alpha=3, factor=4, decompose_both=True), [LINEAR_UNET, CONV3]),
    "lokr-whole": ("LokrModule", dict(lora_dim=64, alpha=3, factor=4), [LINEAR_UNET]),
    "lokr-tucker": ("LokrModule", dict(lora_dim=4, alpha=3, factor=4, use_tucker=True), [CONV3]),
    "ia3": ("IA3Module", dict(), WEIGHT_LAYERS),
    "ia3-on-input": ("IA3Module", dict(train_on_input=True), WEIGHT_LAYERS),
    "diag-oft": ("DiagOFTModule", dict(lora_dim=4), WEIGHT_LAYERS),
    "diag-oft-constrained-rescaled": ("DiagOFTModule", dict(lora_dim=4, constraint=1e-4, rescaled=True), [LINEAR_UNET, CONV3]),
    "boft": ("ButterflyOFTModule", dict(lora_dim=4), [LINEAR_UNET, CONV3]),
    "glora": ("GLoRAModule", dict(lora_dim=4, alpha=2), WEIGHT_LAYERS),
    "full": ("FullModule", dict(), WEIGHT_LAYERS),
    "norm": ("NormModule", dict(), [GROUPNORM, LAYERNORM]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_lycoris_format_matches_the_reference(model, tmp_path, case):
    """The engine's patched layer computes what LyCORIS's own module computes around a copy of the layer (its
    training-time forward: W + the module's weight change)."""
    class_name, kwargs, layers = CASES[case]
    cls = getattr(lycoris_modules(), class_name)
    state_dict, expected, originals = {}, {}, {}
    for seed, (layer_name, key) in enumerate(layers):
        layer = layer_of(model, layer_name)
        originals[layer_name] = {k: v.detach().clone() for k, v in layer.state_dict().items()}
        wrapped = copy.deepcopy(layer)
        reference = cls(key, wrapped, multiplier=1.0, **kwargs)
        randomize(reference, seed)
        reference.apply_to()
        with torch.no_grad():
            expected[layer_name] = wrapped(probe_input(layer, seed))
        state_dict.update({f"{key}.{k}": v for k, v in reference.state_dict().items()})

    net = apply_file(tmp_path, case, state_dict)
    assert sorted(net.modules) == sorted(name for name, _ in layers)
    for seed, (layer_name, _) in enumerate(layers):
        layer = layer_of(model, layer_name)
        with torch.no_grad():
            actual = layer(probe_input(layer, seed))
        torch.testing.assert_close(actual, expected[layer_name], rtol=1e-4, atol=5e-5, msg=f"{case}: {layer_name}")
        assert not torch.equal(layer.weight, originals[layer_name]["weight"])

    from modules.lora import networks
    networks.load_networks([])
    for layer_name, tensors in originals.items():
        for name, value in layer_of(model, layer_name).state_dict().items():
            assert torch.equal(value, tensors[name]), f"{layer_name}.{name} not restored"


def test_lokr_matches_the_reference_formula(model, tmp_path):
    """LoKr with both halves whole against lycoris.functional.lokr: no alpha scaling then."""
    from lycoris.functional import lokr as lokr_reference
    layer_name, key = LINEAR_UNET
    layer = layer_of(model, layer_name)
    generator = torch.Generator().manual_seed(7)
    out_dim, in_dim = layer.weight.shape
    w1 = torch.randn(4, 4, generator=generator) * 0.2
    w2 = torch.randn(out_dim // 4, in_dim // 4, generator=generator) * 0.2
    reference = lokr_reference.diff_weight(w1, None, None, w2, None, None, None, gamma=3.0)
    original = layer.weight.detach().clone()
    apply_file(tmp_path, "lokr-whole-functional", {f"{key}.lokr_w1": w1, f"{key}.lokr_w2": w2, f"{key}.alpha": torch.tensor(3.0)})
    torch.testing.assert_close(layer.weight, original + reference, rtol=1e-4, atol=2e-5)


def text_model_holder(model):
    """A plain module with the CLIP text model at `.text_model` (PEFT takes a module with a `config` for a
    transformers model and wants more of it), so paths read "text_model.encoder.layers.0..." as in the files."""
    holder = torch.nn.Module()
    holder.text_model = model.cond_stage_model.wrapped.transformer.text_model
    return holder


@pytest.mark.parametrize("use_dora", [False, True])
def test_peft_file_matches_peft(model, tmp_path, use_dora):
    """A diffusers/PEFT file (unet.<diffusers path>.lora_A.weight, text_encoder....): the patched layers equal PEFT's
    merged layers. PEFT files carry no alpha (diffusers saves lora_alpha == r)."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from tests import network_factory
    reference_model = copy.deepcopy(model)
    diffusers_names = network_factory.diffusers_unet_names(reference_model)
    state_dict, expected = {}, {}
    for part, root, prefix, targets in (
            ("unet", reference_model.model.diffusion_model, "diffusion_model.", ["to_q", "in_layers.2", "proj_in", "emb_layers.1"]),
            ("text_encoder", text_model_holder(reference_model), "transformer.", ["q_proj", "fc1"])):
        config = LoraConfig(r=4, lora_alpha=4, target_modules=targets, use_dora=use_dora, init_lora_weights=False)
        peft_model = get_peft_model(root, config)
        for key, value in get_peft_model_state_dict(peft_model).items():
            path = key[len("base_model.model."):]
            module_path, _, weight_part = path.partition(".lora_")
            if part == "unet":
                module_path = diffusers_names[module_path]
            state_dict[f"{part}.{module_path}.lora_{weight_part}"] = value
        merged = peft_model.merge_and_unload()
        for path, module in merged.named_modules():
            if any(path.endswith(t) for t in targets):
                expected[(prefix + path).replace(".", "_")] = module.weight.detach().clone()
    net = apply_file(tmp_path, "peft-dora" if use_dora else "peft", state_dict)
    assert len(net.modules) == len(expected) and not net.unmatched_keys
    for layer_name, weight in expected.items():
        torch.testing.assert_close(layer_of(model, layer_name).weight, weight, rtol=1e-4, atol=2e-5, msg=layer_name)


def test_diffusers_block_names_match_a1111_for_sd15():
    """The block table computed from an SD1.5-shaped UNet gives A1111's fixed SD1 conversions."""
    from ldm.modules.diffusionmodules.openaimodel import UNetModel
    from modules.lora import layer_names
    from tests.checkpoint_factory import SD15_UNET
    with torch.device("meta"):
        unet = UNetModel(in_channels=4, out_channels=4, use_spatial_transformer=True, **SD15_UNET)
    table = layer_names.diffusers_block_names(unet)
    # A1111 lora_convert: down_blocks_B_(attentions|resnets)_I -> input_blocks_{1 + 3B + I}_{1|0}, downsamplers of
    # block B -> input_blocks_{3 + 3B}_0_op, up_blocks_B_*_I -> output_blocks_{3B + I}, upsamplers of B ->
    # output_blocks_{2 + 3B}_{2 if B > 0 else 1}_conv, mid_block_resnets_I -> middle_block_{2I}
    for block in range(4):
        for i in range(2):
            assert table[f"input_blocks.{1 + 3 * block + i}.0"] == f"down_blocks.{block}.resnets.{i}"
            if block < 3:
                assert table[f"input_blocks.{1 + 3 * block + i}.1"] == f"down_blocks.{block}.attentions.{i}"
        if block < 3:
            assert table[f"input_blocks.{3 + 3 * block}.0.op"] == f"down_blocks.{block}.downsamplers.0.conv"
            assert table[f"output_blocks.{2 + 3 * block}.{2 if block > 0 else 1}.conv"] == f"up_blocks.{block}.upsamplers.0.conv"
        for i in range(3):
            assert table[f"output_blocks.{3 * block + i}.0"] == f"up_blocks.{block}.resnets.{i}"
            if block > 0:
                assert table[f"output_blocks.{3 * block + i}.1"] == f"up_blocks.{block}.attentions.{i}"
    assert table["middle_block.0"] == "mid_block.resnets.0" and table["middle_block.2"] == "mid_block.resnets.1"
    assert table["middle_block.1"] == "mid_block.attentions.0"


def test_key_layouts_name_the_same_layer(model):
    from modules.lora import layer_names, networks
    keys = networks.layer_tables(model).keys
    layer = "diffusion_model_input_blocks_3_1_transformer_blocks_0_attn1_to_out_0"
    for file_key in ("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_down.weight",
                     "lora_unet_input_blocks_3_1_transformer_blocks_0_attn1_to_out_0.lora_down.weight",
                     "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.lora_A.weight",
                     "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight",
                     "base_model.model.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.lora_A.weight"):
        layer_key, part = layer_names.split_network_key(file_key)
        assert part == "lora_down.weight" and keys[layer_key] == layer, file_key
    te_layer = "transformer_text_model_encoder_layers_1_mlp_fc2"
    for file_key in ("lora_te_text_model_encoder_layers_1_mlp_fc2.alpha", "lora_te1_text_model_encoder_layers_1_mlp_fc2.alpha",
                     "text_encoder.text_model.encoder.layers.1.mlp.fc2.alpha"):
        layer_key, part = layer_names.split_network_key(file_key)
        assert part == "alpha" and keys[layer_key] == te_layer, file_key


class OpenCLIPBlock(torch.nn.Module):
    """One block of an OpenCLIP text transformer, with its original parameter names."""

    def __init__(self, width):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(width)
        self.attn = torch.nn.MultiheadAttention(width, 2)
        self.ln_2 = torch.nn.LayerNorm(width)
        self.mlp = torch.nn.Sequential()
        self.mlp.add_module("c_fc", torch.nn.Linear(width, width * 2))
        self.mlp.add_module("gelu", torch.nn.GELU())
        self.mlp.add_module("c_proj", torch.nn.Linear(width * 2, width))


def openclip_model(tiny_model, width=16, blocks=2):
    """A model whose text encoder is laid out as OpenCLIP's (SD2): cond_stage_model.wrapped.model.transformer.resblocks."""
    class Model(torch.nn.Module):
        pass

    encoder = torch.nn.Module()
    encoder.model = torch.nn.Module()
    encoder.model.transformer = torch.nn.Module()
    encoder.model.transformer.resblocks = torch.nn.ModuleList(OpenCLIPBlock(width) for _ in range(blocks))
    wrapper = torch.nn.Module()
    wrapper.wrapped = encoder
    model = Model()
    model.cond_stage_model = wrapper
    model.model = copy.deepcopy(tiny_model.model)
    return model


def test_openclip_text_encoder_files_patch_the_packed_qkv_and_the_mlp(model, tmp_path, monkeypatch):
    """SD2/SDXL-bigG LoRAs name the OpenCLIP blocks with CLIP's transformers names; q/k/v land in thirds of
    attn.in_proj_weight, fc1/fc2 in mlp.c_fc/c_proj; removing the network restores them exactly."""
    from modules.lora import networks
    sd2 = openclip_model(model)
    monkeypatch.setattr(shared, "sd_model", sd2)
    generator = torch.Generator().manual_seed(3)
    block = sd2.cond_stage_model.wrapped.model.transformer.resblocks[1]
    width = block.attn.embed_dim
    original_in_proj = block.attn.in_proj_weight.detach().clone()
    original_fc1 = block.mlp.c_fc.weight.detach().clone()
    state_dict, expected = {}, {}
    for part, rows in (("self_attn_q_proj", slice(0, width)), ("self_attn_v_proj", slice(2 * width, 3 * width))):
        down, up = torch.randn(2, width, generator=generator), torch.randn(width, 2, generator=generator)
        key = f"lora_te_text_model_encoder_layers_1_{part}"
        state_dict.update({f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up, f"{key}.alpha": torch.tensor(1.0)})
        expected[rows.start] = up @ down * 0.5
    down, up = torch.randn(2, width, generator=generator), torch.randn(width * 2, 2, generator=generator)
    state_dict.update({"lora_te_text_model_encoder_layers_1_mlp_fc1.lora_down.weight": down,
                       "lora_te_text_model_encoder_layers_1_mlp_fc1.lora_up.weight": up})
    net = apply_file(tmp_path, "sd2", state_dict)
    assert not net.unmatched_keys
    patched = block.attn.in_proj_weight
    torch.testing.assert_close(patched[:width], original_in_proj[:width] + expected[0])
    assert torch.equal(patched[width:2 * width], original_in_proj[width:2 * width])  # k untouched
    torch.testing.assert_close(patched[2 * width:], original_in_proj[2 * width:] + expected[2 * width])
    torch.testing.assert_close(block.mlp.c_fc.weight, original_fc1 + up @ down)
    assert block.attn.network_layer_name == "model_transformer_resblocks_1_attn"  # A1111's name for it
    networks.load_networks([])
    assert torch.equal(block.attn.in_proj_weight, original_in_proj) and torch.equal(block.mlp.c_fc.weight, original_fc1)


def test_dyn_keeps_the_first_ranks_with_the_full_rank_scale(model, tmp_path):
    """<lora:x:1:1:2> (or dyn=2) uses the first 2 of the 4 ranks; alpha/rank still counts all 4 (A1111)."""
    from modules.lora import networks
    layer_name, key = LINEAR_UNET
    layer = layer_of(model, layer_name)
    original = layer.weight.detach().clone()
    generator = torch.Generator().manual_seed(5)
    down = torch.randn(4, layer.in_features, generator=generator) * 0.2
    up = torch.randn(layer.out_features, 4, generator=generator) * 0.2
    apply_file(tmp_path, "dynamic", {f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up, f"{key}.alpha": torch.tensor(2.0)})
    networks.load_networks(["dynamic"], [1.0], [1.0], [2])
    torch.testing.assert_close(layer.weight, original + up[:, :2] @ down[:2] * 0.5)
    networks.load_networks(["dynamic"], [1.0], [1.0], [None])
    torch.testing.assert_close(layer.weight, original + up @ down * 0.5)
