"""Our CLIP text model (ldm.modules.encoders.clip_text) computes what transformers' CLIPTextModel computes with the same
weights, keeps its names and output object, and loading a checkpoint no longer imports transformers' modeling code
(seconds and ~200 MB of RSS at every start) nor torch._dynamo; with the light CLIP tokenizer, not transformers at all."""
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from ldm.modules.encoders.clip_text import CLIPTextConfig, CLIPTextModel, CLIPTextModelOutput
from ldm.modules.encoders.modules import sd1_clip_config
from tests import checkpoint_factory as factory
from tests.family_reference import meta_build_and_assign

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CHECKPOINT = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")
REDUCED = dict(hidden_size=128, num_hidden_layers=3, intermediate_size=512, num_attention_heads=2)
TOLERANCE = 1e-5


def pair(seed=0, **widths):
    """(ours with random weights, transformers' CLIPTextModel given the same tensors)."""
    from transformers import CLIPTextConfig as ReferenceConfig, CLIPTextModel as ReferenceModel
    config = sd1_clip_config(**widths)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ours = CLIPTextModel(config).eval().requires_grad_(False)
    weights = {k.removeprefix("text_model."): v for k, v in ours.state_dict().items()}
    return ours, meta_build_and_assign(ReferenceModel, ReferenceConfig(**config.to_dict()), weights)


def prompts_ids(lengths, n=77):
    """Token ids as the tokenizer pads them: start, random words, end, then the end token (SD's pad) to n."""
    g = torch.Generator().manual_seed(1)
    ids = torch.full((len(lengths), n), 49407)
    for row, length in enumerate(lengths):
        ids[row, 0] = 49406
        ids[row, 1:length + 1] = torch.randint(0, 49406, (length,), generator=g)
    return ids


def assert_same_outputs(ours, reference):
    assert len(ours.hidden_states) == len(reference.hidden_states)
    for layer, (a, b) in enumerate(zip(ours.hidden_states, reference.hidden_states)):
        assert (a - b).abs().max() <= TOLERANCE, f"hidden state {layer}"
    assert (ours.last_hidden_state - reference.last_hidden_state).abs().max() <= TOLERANCE
    assert (ours.pooler_output - reference.pooler_output).abs().max() <= TOLERANCE


def test_every_layer_the_last_state_and_the_pooled_state_match_transformers():
    ours, reference = pair(**REDUCED)
    ids = prompts_ids([5, 30, 75])
    with torch.inference_mode():
        a = ours(input_ids=ids, output_hidden_states=True)
        b = reference(input_ids=ids, output_hidden_states=True)
    assert len(a.hidden_states) == REDUCED["num_hidden_layers"] + 1
    assert a.last_hidden_state.shape == (3, 77, 128) and a.pooler_output.shape == (3, 128)
    assert_same_outputs(a, b)
    # pooled: the state at each prompt's first end token (pad is the end token too)
    assert torch.equal(a.pooler_output, a.last_hidden_state[torch.arange(3), torch.tensor([6, 31, 76])])


@pytest.mark.parametrize("padding", ["right", "left"])
def test_a_padding_mask_is_applied_as_transformers_applies_it(padding):
    ours, reference = pair(**REDUCED)
    ids = prompts_ids([5, 30])
    mask = torch.ones(2, 77, dtype=torch.long)
    if padding == "right":
        mask[0, 8:] = 0
        mask[1, 40:] = 0
    else:
        mask[0, :3] = 0  # a padded first token sees nothing: both give its fully masked row the same value
    with torch.inference_mode():
        a = ours(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        b = reference(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        unmasked = ours(input_ids=ids).last_hidden_state
    assert_same_outputs(a, b)
    assert torch.isfinite(a.last_hidden_state).all()
    assert not torch.allclose(a.last_hidden_state, unmasked)  # the mask did something


def test_position_ids_argument_matches_transformers():
    ours, reference = pair(**REDUCED)
    ids = prompts_ids([10], n=20)
    positions = torch.arange(5, 25)[None]
    with torch.inference_mode():
        a = ours(input_ids=ids, position_ids=positions, output_hidden_states=True)
        b = reference(input_ids=ids, position_ids=positions, output_hidden_states=True)
        default = ours(input_ids=ids).last_hidden_state
    assert_same_outputs(a, b)
    assert not torch.allclose(a.last_hidden_state, default)


def test_at_real_width_sd1s_clip_l_matches_transformers():
    start = time.perf_counter()
    ours, reference = pair()  # CLIP ViT-L/14: 768 wide, 12 layers, 12 heads
    ids = prompts_ids([12])
    with torch.inference_mode():
        a = ours(input_ids=ids, output_hidden_states=True)
        b = reference(input_ids=ids, output_hidden_states=True)
    assert len(a.hidden_states) == 13 and a.last_hidden_state.shape == (1, 77, 768)
    assert_same_outputs(a, b)
    print(f"real-width parity: {time.perf_counter() - start:.1f} s")


def test_names_and_state_dict_keys_are_transformers_under_text_model():
    from transformers import CLIPTextConfig as ReferenceConfig, CLIPTextModel as ReferenceModel
    config = sd1_clip_config(**REDUCED)
    with torch.device("meta"):
        ours = CLIPTextModel(config)
        reference = ReferenceModel(ReferenceConfig(**config.to_dict()))
    assert list(ours.state_dict()) == ["text_model." + k for k in reference.state_dict()]
    assert "text_model.embeddings.position_ids" not in ours.state_dict()  # not stored, as in transformers
    for name in ("embeddings.token_embedding", "embeddings.position_embedding", "encoder.layers.2.self_attn.q_proj",
                 "encoder.layers.0.self_attn.out_proj", "encoder.layers.0.mlp.fc1", "encoder.layers.1.layer_norm2",
                 "final_layer_norm"):
        assert type(ours.text_model.get_submodule(name)) is type(reference.get_submodule(name))
    assert ours.config.hidden_size == 128 and ours.config.num_hidden_layers == 3 and ours.config.eos_token_id == 49407


def test_the_output_reads_by_attribute_key_and_position_as_transformers_output_does():
    ours, _ = pair(**REDUCED)
    ids = prompts_ids([4])
    with torch.inference_mode():
        plain = ours(input_ids=ids)
        hidden = ours(input_ids=ids, output_hidden_states=-2)  # A1111 passes -CLIP_stop_at_last_layers
        as_tuple = ours(input_ids=ids, return_dict=False)
    assert isinstance(plain, CLIPTextModelOutput)
    assert plain[0] is plain.last_hidden_state is plain["last_hidden_state"]
    assert plain[1] is plain.pooler_output and plain.hidden_states is None and plain.attentions is None
    assert list(plain.keys()) == ["last_hidden_state", "pooler_output"] and len(plain.to_tuple()) == 2
    assert hidden[2] is hidden.hidden_states and hidden.hidden_states[-2] is hidden["hidden_states"][-2]
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], plain.last_hidden_state)
    with pytest.raises(AttributeError):
        plain.logits


def test_textual_inversions_hook_on_token_embedding_is_what_the_forward_calls():
    ours, _ = pair(**REDUCED)
    embeddings = ours.text_model.embeddings
    seen = []

    class Recording(torch.nn.Module):
        def __init__(self, wrapped):
            super().__init__()
            self.wrapped = wrapped

        def forward(self, input_ids):
            seen.append(input_ids)
            return self.wrapped(input_ids)

    ours.set_input_embeddings(Recording(embeddings.token_embedding))
    assert isinstance(ours.get_input_embeddings(), Recording)
    ours(input_ids=prompts_ids([3]))
    assert len(seen) == 1 and seen[0].shape == (1, 77)


def test_a_bad_config_is_refused_with_its_field_named():
    with pytest.raises(ValueError, match="hidden_act"):
        CLIPTextConfig(hidden_act="relu")
    with pytest.raises(ValueError, match="num_attention_heads"):
        sd1_clip_config(hidden_size=100, num_attention_heads=3)


def test_position_ids_stored_in_a_checkpoint_even_as_floats_are_ignored(tmp_path):
    """Many SD1 files carry embeddings.position_ids, some as floats (75.99998...): the model's own 0..76 are used."""
    from modules import sd_models
    model = factory.build_random_model()
    sd = factory.model_state_dict(model)
    key = "cond_stage_model.transformer.text_model.embeddings.position_ids"
    with_ids = dict(sd, **{key: (torch.arange(77, dtype=torch.float32) - 0.4)[None]})
    loaded = []
    for name, state_dict in (("plain", sd), ("with-ids", with_ids)):
        path = factory.save_state_dict(state_dict, str(tmp_path / f"{name}.safetensors"))
        info = sd_models.CheckpointInfo(path)
        built = sd_models.build_model(sd_models.detect_model_config(sd_models.read_state_dict(path), info))
        loaded.append(sd_models.load_model_weights(built, None, sd_models.read_state_dict(path), device="cpu"))
    for m in loaded:
        ids = m.cond_stage_model.transformer.text_model.embeddings.position_ids
        assert ids.dtype == torch.int64 and ids.tolist() == [list(range(77))]
    with torch.inference_mode():
        plain, with_ids_cond = (m.cond_stage_model(["a red circle"]) for m in loaded)
    assert torch.equal(plain, with_ids_cond)


WATCHED = ("transformers", "transformers.models.clip.modeling_clip", "transformers.modeling_utils", "torch._dynamo")

LOAD_AND_ENCODE = """
import json, sys
from modules import sd_models
for path in sys.argv[1:]:
    model = sd_models.load_model(sd_models.CheckpointInfo(path))
    model.get_learned_conditioning(["a large red circle"])
print(json.dumps({name: name in sys.modules for name in %r}))
"""


def test_loading_and_encoding_with_a_model_imports_neither_transformers_nor_dynamo(tmp_path, family_checkpoints):
    """A fresh process loads the demo model (SD1), a tiny SD2 and a tiny SDXL, and encodes a prompt with each:
    `transformers` stays out of sys.modules (the tokenizer is modules/clip_tokenizer's light one)."""
    if not os.path.isfile(DEMO_CHECKPOINT):
        pytest.skip(f"the demo checkpoint is not at {DEMO_CHECKPOINT}")
    env = dict(os.environ, SD_WEBUI_TEST_ARGV="--no-hashing", SD_WEBUI_DATA_DIR=str(tmp_path))
    paths = [DEMO_CHECKPOINT, family_checkpoints("sd2"), family_checkpoints("sdxl")]
    result = subprocess.run([sys.executable, "-c", LOAD_AND_ENCODE % (WATCHED,), *paths], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0 and lines, result.stdout + result.stderr
    imported = [name for name, present in json.loads(lines[-1]).items() if present]
    assert imported == [], f"loading a model imported {imported}"
