"""Detection: every family and variant is recognised from keys and shapes, head counts follow the family's rule or
the `<checkpoint>.yaml` beside the file, v-prediction is decided as A1111 decides it (SD2's UNet test, SDXL's marker
keys, the yaml), the schedule is the file's own, and architectures we do not run are refused by name."""
import os

import pytest
import torch

from modules import model_config_yaml, model_detection, model_families, sd_models
from tests import checkpoint_factory as factory

CASES = [(family.name, variant) for family in model_families.FAMILIES for variant in family.variants]


def meta_state_dict(family_name, variant="base", heads=True):
    config = factory.family_config(family_name, variant=variant, heads=heads)
    model = factory.build_random_family_model(config, device="meta")
    return factory.model_state_dict(model, with_schedule=False), config


@pytest.mark.parametrize("family_name, variant", CASES)
def test_every_family_and_variant_is_recognised_with_its_widths(family_name, variant):
    sd, written = meta_state_dict(family_name, variant, heads=False)
    config = model_detection.detect_config(sd, f"{family_name}-{variant}.safetensors")
    assert config.family.name == family_name and config.variant == variant
    assert config.label == model_families.BY_NAME[family_name].variant_label(variant)
    for key in ("in_channels", "model_channels", "channel_mult", "transformer_depth", "context_dim",
                "use_linear_in_transformer", "num_heads", "num_head_channels", "adm_in_channels"):
        assert config.unet.get(key) == written.unet.get(key), key
    for ours, theirs in zip(config.text_encoders, written.text_encoders):
        assert (ours.width, ours.layers, ours.heads, ours.mlp_width, ours.embed_dim) == \
            (theirs.width, theirs.layers, theirs.heads, theirs.mlp_width, theirs.embed_dim)
    assert config.scale_factor == model_families.BY_NAME[family_name].latent.scale_factor


@pytest.mark.parametrize("family_name", [family.name for family in model_families.FAMILIES])
def test_yaml_beside_the_checkpoint_sets_head_counts(family_name, tmp_path):
    sd, written = meta_state_dict(family_name, heads=True)
    (tmp_path / "m.yaml").write_text(factory.family_yaml(written))
    without = model_detection.detect_config(sd, "m.safetensors")
    with_yaml = model_detection.detect_config(sd, "m.safetensors", yaml_overrides=model_config_yaml.read(str(tmp_path / "m.safetensors")))
    assert [te.heads for te in with_yaml.text_encoders] == [te.heads for te in written.text_encoders]
    assert [te.heads for te in without.text_encoders] != [te.heads for te in written.text_encoders]
    assert (with_yaml.unet["num_heads"], with_yaml.unet["num_head_channels"]) == (written.unet["num_heads"], written.unet["num_head_channels"])


def test_unreadable_or_impossible_yaml_is_a_clear_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("model: [unclosed")
    with pytest.raises(model_config_yaml.ModelYamlError, match="bad.yaml"):
        model_config_yaml.read(str(tmp_path / "bad.safetensors"))
    sd, written = meta_state_dict("sd2")
    written.text_encoders[0].heads = 5  # 32 wide: 5 heads do not divide it
    (tmp_path / "odd.yaml").write_text(factory.family_yaml(written))
    with pytest.raises(model_detection.UnsupportedModelError, match="odd.safetensors.*5 heads"):
        model_detection.detect_config(sd, "odd.safetensors", yaml_overrides=model_config_yaml.read(str(tmp_path / "odd.safetensors")))


@pytest.mark.parametrize("keys, name", [
    (["model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"], "SD3"),
    (["model.diffusion_model.double_blocks.0.img_attn.qkv.weight"], "Flux"),
    (["double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight"], "Flux"),
    (["clip_txt_mapper.weight", "down_blocks.0.0.channelwise.0.weight"], "Stable Cascade"),
    (["x_embedder.proj.weight", "t_block.1.weight", "y_embedder.y_proj.fc1.weight"], "PixArt"),
    (["mlp_t5.0.weight", "extra_embedder.0.weight"], "Hunyuan-DiT"),
    (["model.diffusion_model.double_layers.0.attn.w1q.weight"], "AuraFlow"),
    (["model.diffusion_model.input_blocks.1.0.time_stack.in_layers.0.weight"], "Stable Video Diffusion"),
    (["model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.1.model.ln_final.weight", "edm_mean"], "EDM"),
    (["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.model.ln_final.weight", "depth_model.model.pretrained.act_postprocess3.0.project.0.bias"], "depth-to-image"),
])
def test_unsupported_architectures_are_refused_by_name(keys, name):
    sd = {k: torch.empty(1, device="meta") for k in keys}
    with pytest.raises(model_detection.UnsupportedModelError) as e:
        model_detection.detect_config(sd, "/x/mystery.safetensors")
    message = str(e.value)
    assert "mystery.safetensors" in message and name in message and "supported: SD1.x, SD2.x, SDXL" in message


# ---- prediction type ----------------------------------------------------------------------------------------------

def _load(path):
    return sd_models.load_model(sd_models.CheckpointInfo(str(path)))


def test_sd2_v_prediction_is_decided_by_the_references_unet_test(tmp_path):
    """A1111 runs the UNet at t=999 on a constant input: far below the input means v (768-v), near it means eps."""
    for bias, expected, size in ((-3.0, "v", 768), (0.0, "eps", 512)):
        config = factory.family_config("sd2")
        model = factory.build_random_family_model(config)
        out = model.model.diffusion_model.out[2]
        torch.nn.init.zeros_(out.weight)
        torch.nn.init.constant_(out.bias, bias)
        path = tmp_path / f"sd2-{expected}.safetensors"
        factory.save_state_dict(factory.model_state_dict(model), path)
        (tmp_path / f"sd2-{expected}.yaml").write_text(factory.family_yaml(config))
        loaded = _load(path)
        assert loaded.parameterization == expected and loaded.model_config.parameterization_source == "SD2 test"
        assert loaded.default_size == size
        assert loaded.model_config.label == ("SD2.x (v-prediction)" if expected == "v" else "SD2.x")


def test_sdxl_marker_keys_and_yaml_decide_v_prediction(tmp_path):
    path, _ = factory.make_family_checkpoint(tmp_path / "xl-v.safetensors", "sdxl", markers=("v_pred", "ztsnr"))
    model = _load(path)
    assert model.parameterization == "v" and model.ztsnr and model.model_config.parameterization_source == "marker key"
    # the loader builds the model with the detected parameterization (above): detecting is enough from here
    plain, config = factory.make_family_checkpoint(tmp_path / "xl.safetensors", "sdxl")
    info = sd_models.CheckpointInfo(str(plain))
    assert sd_models.detect_model_config(sd_models.read_state_dict(str(plain)), info).parameterization == "eps"
    config.parameterization = "v"
    (tmp_path / "xl.yaml").write_text(factory.family_yaml(config))
    assert sd_models.detect_model_config(sd_models.read_state_dict(str(plain)), info).parameterization == "v"


def test_zero_terminal_snr_from_the_marker_key_or_the_setting(tmp_path):
    from modules import shared
    path, _ = factory.make_family_checkpoint(tmp_path / "xl-z.safetensors", "sdxl", markers=("v_pred", "ztsnr"))
    model = _load(path)
    sd_models.apply_alpha_schedule_override(model)
    assert model.alphas_cumprod[-1].item() == pytest.approx(4.8973451890853435e-08)
    assert torch.equal(model.alphas_cumprod_original[0], model.alphas_cumprod[0])
    plain, _ = factory.make_family_checkpoint(tmp_path / "xl.safetensors", "sdxl")
    model = _load(plain)
    sd_models.apply_alpha_schedule_override(model)
    assert model.alphas_cumprod[-1].item() > 1e-3
    saved = shared.opts.sd_noise_schedule
    try:
        shared.opts.sd_noise_schedule = "Zero Terminal SNR"
        sd_models.apply_alpha_schedule_override(model)
        assert model.alphas_cumprod[-1].item() == pytest.approx(4.8973451890853435e-08)
    finally:
        shared.opts.sd_noise_schedule = saved
        sd_models.apply_alpha_schedule_override(model)


def test_schedule_buffers_are_the_files_own(tmp_path):
    """Each stored buffer is used as stored: none re-derived from alphas_cumprod (which differs in the last bits)."""
    config = factory.family_config("sd1")
    model = factory.build_random_family_model(config)
    sd = factory.model_state_dict(model)
    for name in model.SCHEDULE_BUFFERS:
        if name != "alphas_cumprod":
            sd[name] = sd[name] * (1 + 1e-5)  # what float32 round-off of the original float64 values looks like
    factory.save_state_dict(sd, tmp_path / "sched.safetensors")
    (tmp_path / "sched.yaml").write_text(factory.family_yaml(config))
    loaded = _load(tmp_path / "sched.safetensors")
    for name in model.SCHEDULE_BUFFERS:
        assert torch.equal(getattr(loaded, name).cpu(), sd[name]), name


def test_latent_scale_factors_are_written_only_in_the_family_table():
    """Every other place reads them from modules.model_families (the model classes' defaults included)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = []
    for folder in ("modules", "ldm", "sgm", "scripts", "webui"):
        for directory, _, files in os.walk(os.path.join(root, folder)):
            for name in files:
                path = os.path.join(directory, name)
                if name.endswith(".py") and path != model_families.__file__:
                    with open(path, encoding="utf8") as file:
                        text = file.read()
                    found += [f"{os.path.relpath(path, root)}: {c}" for c in ("0.18215", "0.13025") if c in text]
    assert found == []
