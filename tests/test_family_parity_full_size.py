"""At the real widths (SD2 768-v, SDXL base, SDXL refiner; random weights), each module we build computes what
diffusers/transformers compute on the same weights, to 1e-4 relative in fp32: the UNet (with SDXL's vector), the text
encoders with SDXL's pooled output and conditioning vector, and the VAE.

Behind the `full_size` marker (`python run_tests.py -m full_size`): an SDXL UNet in fp32 is 10 GB, so the modules are
built and compared one at a time, and the run takes the machine's big-memory lock (/tmp/sdwebui-bigmem.lock) so that
two of these never share the RAM.
"""
import fcntl
import gc

import pytest
import torch

from tests import checkpoint_factory as factory
from tests import family_reference as reference

pytest.importorskip("diffusers")
pytestmark = pytest.mark.full_size

TOLERANCE = 1e-4
PROMPTS = ["a photo of a cat", "an oil painting of a lighthouse at dusk"]
FAMILIES = [("sd2", "v"), ("sdxl", "eps"), ("sdxl_refiner", "eps")]


@pytest.fixture(scope="module", autouse=True)
def big_memory_lock():
    with open("/tmp/sdwebui-bigmem.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
        fcntl.flock(lock, fcntl.LOCK_UN)


def random_module(factory_fn, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory_fn().eval().requires_grad_(False)


def prefixed(module, prefix):
    return {prefix + k: v for k, v in module.state_dict().items()}


@pytest.mark.parametrize("family, parameterization", FAMILIES)
def test_unet_matches_diffusers_at_full_size(family, parameterization):
    from ldm.modules.diffusionmodules.openaimodel import UNetModel
    config = factory.full_size_config(family, parameterization)
    unet = random_module(lambda: UNetModel(**config.unet), seed=1)
    reference_unet = reference.diffusers_unet(config, prefixed(unet, "model.diffusion_model."))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 16, 16, generator=g)
    t = torch.tensor([700])
    context = torch.randn(1, 77, config.unet["context_dim"], generator=g)
    kwargs, y = {}, None
    if config.family.is_sdxl:
        text_embeds, time_ids, y = reference.random_sdxl_vector_inputs(config, reference_unet, 1, g)
        kwargs["added_cond_kwargs"] = {"text_embeds": text_embeds, "time_ids": time_ids}
    with torch.inference_mode():
        ours = unet(x, t, context=context, y=y)
        theirs = reference_unet(x, t, encoder_hidden_states=context, **kwargs).sample
    del unet, reference_unet
    gc.collect()
    assert reference.relative_error(ours, theirs, f"{family} UNet") <= TOLERANCE


@pytest.mark.parametrize("family, parameterization", FAMILIES)
def test_text_encoders_and_vector_match_transformers_at_full_size(family, parameterization):
    """The raw text encoders (A1111's token rows: CLIP padded with the end token, OpenCLIP with zeros) and, for SDXL,
    the whole conditioner: cross-attention states, pooled bigG embedding, the 2816/2560-wide vector."""
    from modules import model_builder, prompt_parser
    config = factory.full_size_config(family, parameterization)
    with torch.inference_mode():
        if config.family.is_sdxl:
            conditioner = random_module(lambda: model_builder.build_conditioner(config), seed=2)
            state_dict = prefixed(conditioner, "conditioner.")
            from modules import sd_models_xl
            batch = prompt_parser.SdConditioning(PROMPTS, width=1024, height=768)
            ours = conditioner(sd_models_xl.conditioning_inputs(batch, 1024, 768))
        else:
            encoder = random_module(lambda: model_builder.build_text_encoder(config.text_encoders[0], for_sdxl=False), seed=2)
            state_dict = prefixed(encoder, "cond_stage_model.")
            ours = {"crossattn": encoder(PROMPTS)}
        theirs = reference.text_conditioning(config, state_dict, PROMPTS, width=1024, height=768)
    assert ours["crossattn"].shape == theirs["crossattn"].shape
    assert reference.relative_error(ours["crossattn"], theirs["crossattn"], f"{family} text encoders") <= TOLERANCE
    if config.family.is_sdxl:
        assert ours["vector"].shape == theirs["vector"].shape == (2, config.unet["adm_in_channels"])
        assert reference.relative_error(ours["vector"], theirs["vector"], f"{family} vector") <= TOLERANCE
        pooled = config.text_encoders[-1].embed_dim
        assert reference.relative_error(ours["vector"][:, :pooled], theirs["pooled"], f"{family} pooled") <= TOLERANCE


@pytest.mark.parametrize("family, parameterization", FAMILIES[:2])
def test_vae_matches_diffusers_at_full_size(family, parameterization):
    from ldm.models.autoencoder import AutoencoderKL
    config = factory.full_size_config(family, parameterization)
    vae = random_module(lambda: AutoencoderKL(**config.vae), seed=3)
    reference_vae = reference.diffusers_vae(config, prefixed(vae, "first_stage_model."))
    g = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, 128, 128, generator=g) * 2 - 1
    latent = torch.randn(1, 4, 16, 16, generator=g)
    with torch.inference_mode():
        ours_mean = vae.encode(image).mean
        theirs_mean = reference_vae.encode(image).latent_dist.mean
        ours_image = vae.decode(latent)
        theirs_image = reference_vae.decode(latent).sample
    assert reference.relative_error(ours_mean, theirs_mean, f"{family} VAE encode") <= TOLERANCE
    assert reference.relative_error(ours_image, theirs_image, f"{family} VAE decode") <= TOLERANCE
