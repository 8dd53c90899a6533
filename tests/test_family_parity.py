"""Every family computes what diffusers/transformers compute on the same weights (fp32, 1e-4 relative).

Tiny checkpoints in each family's real key layout, with head counts that differ from the family's rule (declared in
the `<checkpoint>.yaml` beside them, as the original training configs do), are loaded by our loader; the reference
models are built from explicit configs and given the same tensors through diffusers' own single-file converters.
Compared: the UNet (with SDXL's vector), each text encoder as the prompt machinery uses it (CLIP-L, OpenCLIP-H,
OpenCLIP-bigG with its pooled output), SDXL's conditioning vector, and the VAE. `full_size` runs the same at the
real widths (tests/test_family_parity_full_size.py).
"""
import pytest
import torch

from tests import checkpoint_factory as factory
from tests import family_reference as reference

pytest.importorskip("diffusers")

TOLERANCE = 1e-4
PROMPTS = ["a photo of a cat", "an oil painting of a lighthouse at dusk"]


@pytest.fixture(scope="module", params=["sd1", "sd2", "sdxl", "sdxl_refiner"])
def loaded(request, tmp_path_factory):
    """(state dict, config as written, our model loaded by the normal loader) for each family."""
    from modules import sd_models
    path = tmp_path_factory.mktemp(request.param) / f"tiny-{request.param}.safetensors"
    path, written = factory.make_family_checkpoint(path, request.param)
    model = sd_models.load_model(sd_models.CheckpointInfo(str(path)))
    state_dict = sd_models.read_state_dict(str(path))
    yield state_dict, written, model
    sd_models.unload_model_weights(model)


def test_loader_reads_the_non_default_heads_from_the_yaml(loaded):
    _, written, model = loaded
    config = model.model_config
    assert config.family is written.family
    for key in ("num_heads", "num_head_channels", "context_dim", "transformer_depth", "channel_mult"):
        assert config.unet[key] == written.unet[key], key
    assert [te.heads for te in config.text_encoders] == [te.heads for te in written.text_encoders]


def test_unet_matches_diffusers(loaded):
    state_dict, written, model = loaded
    unet = reference.diffusers_unet(written, state_dict)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 8, generator=g)
    t = torch.tensor([999, 281])
    context = torch.randn(2, 77, written.unet["context_dim"], generator=g)
    kwargs, cond = {}, context
    if written.family.is_sdxl:
        text_embeds, time_ids, vector = reference.random_sdxl_vector_inputs(written, unet, 2, g)
        kwargs["added_cond_kwargs"] = {"text_embeds": text_embeds, "time_ids": time_ids}
        cond = {"crossattn": context, "vector": vector}
    with torch.inference_mode():
        ours = model.apply_model(x, t, cond)
        theirs = unet(x, t, encoder_hidden_states=context, **kwargs).sample
    assert ours.shape == theirs.shape == (2, 4, 8, 8)
    assert reference.relative_error(ours, theirs, "UNet") <= TOLERANCE


def test_text_conditioning_matches_transformers(loaded):
    """What the sampler gets for a prompt: cross-attention states (and SDXL's vector) through our prompt wrappers."""
    state_dict, written, model = loaded
    from modules import prompt_parser
    batch = prompt_parser.SdConditioning(PROMPTS, width=96, height=64)
    with torch.inference_mode():
        ours = model.get_learned_conditioning(batch)
        theirs = reference.text_conditioning(written, state_dict, PROMPTS, width=96, height=64)
    if written.family.is_sdxl:
        assert set(ours) == {"crossattn", "vector"}
        assert ours["vector"].shape == theirs["vector"].shape == (2, written.unet["adm_in_channels"])
        assert reference.relative_error(ours["vector"], theirs["vector"], "vector") <= TOLERANCE
        pooled_width = written.text_encoders[-1].embed_dim
        assert reference.relative_error(ours["vector"][:, :pooled_width], theirs["pooled"], "pooled") <= TOLERANCE
        ours = ours["crossattn"]
    assert ours.shape == theirs["crossattn"].shape == (2, 77, written.unet["context_dim"])
    assert reference.relative_error(ours, theirs["crossattn"], "text encoders") <= TOLERANCE


def test_vae_matches_diffusers(loaded):
    state_dict, written, model = loaded
    vae = reference.diffusers_vae(written, state_dict)
    g = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    latent = torch.randn(1, 4, 8, 8, generator=g)
    with torch.inference_mode():
        ours_moments = model.first_stage_model.encode(image)
        theirs_moments = vae.encode(image).latent_dist
        ours_image = model.decode_first_stage(latent)
        theirs_image = vae.decode(latent / written.scale_factor).sample
    assert reference.relative_error(ours_moments.mean, theirs_moments.mean, "VAE encode") <= TOLERANCE
    assert reference.relative_error(ours_image, theirs_image, "VAE decode") <= TOLERANCE
