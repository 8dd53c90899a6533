"""Our SD1 modules compute what diffusers computes, on the same random weights at full SD1.5 widths (fp32).

The checkpoint is built here in the original key layout and loaded by our loader; diffusers' models are built from
explicit configs (nothing downloaded) and get the same weights through diffusers' own single-file conversion.
"""
import pytest
import torch

from tests import checkpoint_factory as factory

diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.slow

TOLERANCE = 1e-4


def relative_error(ours, reference, what=""):
    error = float((ours.double() - reference.double()).norm() / reference.double().norm())
    print(f"{what} relative error vs diffusers: {error:.2e}")
    return error


def _meta_build_and_assign(cls, config, state_dict):
    """A diffusers/transformers model built without allocating, then given the converted tensors (no copy)."""
    with torch.device("meta"):
        model = cls(**config) if isinstance(config, dict) else cls(config)
    missing, unexpected = model.load_state_dict(state_dict, strict=False, assign=True)
    assert not missing and not unexpected, (missing[:5], unexpected[:5])
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def checkpoint():
    """A random-weight SD1.5-layout state dict, and our model loaded from it by the normal loader."""
    from modules import model_detection, sd_models
    state_dict = factory.sd15_state_dict(seed=0)
    config = model_detection.detect_config(state_dict, "random-sd15.safetensors")
    model = sd_models.build_model(config)
    sd_models.load_model_weights(model, None, state_dict)
    return state_dict, model


def test_unet_matches_diffusers(checkpoint):
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
    state_dict, model = checkpoint
    config = dict(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=768,
        block_out_channels=(320, 640, 1280, 1280), attention_head_dim=8, use_linear_projection=False,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    )
    unet = _meta_build_and_assign(UNet2DConditionModel, config, convert_ldm_unet_checkpoint(state_dict, config))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 8, generator=g)
    t = torch.tensor([999, 281])
    context = torch.randn(2, 77, 768, generator=g)
    with torch.inference_mode():
        ours = model.apply_model(x, t, context)
        reference = unet(x, t, encoder_hidden_states=context).sample
    assert ours.shape == reference.shape == (2, 4, 8, 8)
    assert relative_error(ours, reference, "UNet") <= TOLERANCE


def test_vae_encode_and_decode_match_diffusers(checkpoint):
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    state_dict, model = checkpoint
    config = dict(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=256,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )
    vae = _meta_build_and_assign(AutoencoderKL, config, convert_ldm_vae_checkpoint(state_dict, config))
    g = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    latent = torch.randn(1, 4, 8, 8, generator=g)
    with torch.inference_mode():
        ours_moments = model.encode_first_stage(image)
        reference_dist = vae.encode(image).latent_dist
        ours_image = model.first_stage_model.decode(latent)
        reference_image = vae.decode(latent).sample
    assert ours_moments.mean.shape == (1, 4, 8, 8) and ours_image.shape == (1, 3, 64, 64)
    assert relative_error(ours_moments.mean, reference_dist.mean, "VAE encode mean") <= TOLERANCE
    assert relative_error(ours_moments.logvar, reference_dist.logvar, "VAE encode logvar") <= TOLERANCE
    assert relative_error(ours_image, reference_image, "VAE decode") <= TOLERANCE


def test_text_encoder_matches_diffusers(checkpoint):
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel
    from ldm.modules.encoders.modules import sd1_clip_config
    state_dict, model = checkpoint
    converted = convert_ldm_clip_checkpoint(state_dict)
    # transformers 5's CLIPTextModel has no `text_model.` level (its from_pretrained strips the prefix the same way)
    converted = {k.removeprefix("text_model."): v for k, v in converted.items() if not k.endswith("position_ids")}
    text_model = _meta_build_and_assign(CLIPTextModel, CLIPTextConfig(**sd1_clip_config().to_dict()), converted)
    n = text_model.embeddings.position_embedding.weight.shape[0]
    text_model.embeddings.register_buffer("position_ids", torch.arange(n).expand((1, -1)), persistent=False)
    prompts = ["a photo of a cat", "an oil painting of a lighthouse at dusk, (dramatic:1.2)"]
    tokens = model.cond_stage_model.tokenize(prompts)
    with torch.inference_mode():
        ours = model.get_learned_conditioning(prompts)
        reference = text_model(input_ids=tokens).last_hidden_state
    assert ours.shape == reference.shape == (2, 77, 768)
    assert relative_error(ours, reference, "text encoder") <= TOLERANCE
