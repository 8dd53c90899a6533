"""Conditioning on a tiny CLIP text encoder: 75-token chunks, BREAK, emphasis, CLIP skip, prompt editing in sampling."""
import pytest
import torch

from modules import prompt_parser, sd_hijack, sd_hijack_clip, shared


class TinySD(torch.nn.Module):
    """The parts of a loaded model the prompt machinery touches: a real (tiny) SD1 text encoder and a conv."""

    def __init__(self):
        super().__init__()
        from ldm.modules.encoders.modules import FrozenCLIPEmbedder, sd1_clip_config
        torch.manual_seed(0)
        config = sd1_clip_config(hidden_size=64, num_hidden_layers=3, intermediate_size=128, num_attention_heads=2)
        self.cond_stage_model = FrozenCLIPEmbedder(config=config)
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

    def get_learned_conditioning(self, c):
        return self.cond_stage_model.encode(c) if hasattr(self.cond_stage_model, "encode") else self.cond_stage_model(c)


@pytest.fixture
def opts_set():
    saved = {}

    def set_option(key, value):
        saved.setdefault(key, shared.opts.data.get(key, shared.opts.data_labels[key].default))
        shared.opts.data[key] = value

    yield set_option
    shared.opts.data.update(saved)


@pytest.fixture(scope="module")
def model():
    hijack = sd_hijack.StableDiffusionModelHijack()
    hijack.embedding_db.clear_embedding_dirs()
    m = TinySD()
    hijack.hijack(m)
    m.hijack = hijack
    return m


def encode(model, text):
    with torch.no_grad():
        return model.get_learned_conditioning([text])[0]


def test_hijack_wraps_the_text_encoder(model):
    from ldm.modules.encoders.modules import FrozenCLIPEmbedder
    assert isinstance(model.cond_stage_model, sd_hijack_clip.FrozenCLIPEmbedderWithCustomWords)
    assert isinstance(model.cond_stage_model.wrapped, FrozenCLIPEmbedder)
    clip = model.cond_stage_model
    assert (clip.chunk_length, clip.id_start, clip.id_end, clip.id_pad) == (75, 49406, 49407, 49407)
    assert clip.comma_token == clip.tokenizer.get_vocab()[",</w>"]
    assert model.cond_stage_model_empty_prompt.shape == (1, 77, 64)


def test_undo_hijack_restores_the_original_encoder():
    hijack = sd_hijack.StableDiffusionModelHijack()
    hijack.embedding_db.clear_embedding_dirs()
    m = TinySD()
    original = m.cond_stage_model
    token_embedding = original.transformer.text_model.embeddings.token_embedding
    hijack.hijack(m)
    assert isinstance(original.transformer.text_model.embeddings.token_embedding, sd_hijack.EmbeddingsWithFixes)
    hijack.undo_hijack(m)
    assert m.cond_stage_model is original
    assert original.transformer.text_model.embeddings.token_embedding is token_embedding


def test_short_prompt_is_one_chunk_of_77(model):
    chunks, token_count = model.cond_stage_model.tokenize_line("a photo of a cat")
    assert token_count == 5
    assert len(chunks) == 1
    tokens = chunks[0].tokens
    assert len(tokens) == 77 and tokens[0] == 49406 and tokens[1:6] == [320, 1125, 539, 320, 2368]
    assert tokens[6:] == [49407] * 71
    assert encode(model, "a photo of a cat").shape == (77, 64)


def test_empty_prompt_is_one_chunk(model):
    chunks, token_count = model.cond_stage_model.tokenize_line("")
    assert token_count == 0 and len(chunks) == 1
    assert chunks[0].tokens == [49406] + [49407] * 76


def test_200_token_prompt_yields_3_chunks(model, opts_set):
    opts_set("comma_padding_backtrack", 20)
    prompt = " ".join(["cat"] * 200)
    chunks, token_count = model.cond_stage_model.tokenize_line(prompt)
    assert token_count == 200 and len(chunks) == 3
    assert all(len(c.tokens) == 77 and c.tokens[0] == 49406 and c.tokens[-1] == 49407 for c in chunks)
    assert encode(model, prompt).shape == (231, 64)
    assert model.hijack.get_prompt_lengths(prompt) == (200, 225)


def test_chunks_are_encoded_separately_and_concatenated(model):
    first, second = " ".join(["cat"] * 75), "dog"
    both = encode(model, first + " " + second)
    assert both.shape == (154, 64)
    assert torch.allclose(both[:77], encode(model, first), atol=1e-6)
    assert torch.allclose(both[77:], encode(model, second), atol=1e-6)


def test_break_starts_a_new_chunk_and_changes_the_result(model):
    with_break = encode(model, "a red cat BREAK a blue dog")
    without = encode(model, "a red cat a blue dog")
    assert with_break.shape == (154, 64) and without.shape == (77, 64)
    assert torch.allclose(with_break[:77], encode(model, "a red cat"), atol=1e-6)
    assert torch.allclose(with_break[77:], encode(model, "a blue dog"), atol=1e-6)
    # BREAK inside brackets is still a BREAK here (the reference ignores it there)
    assert encode(model, "(a red cat BREAK a blue dog)").shape == (154, 64)
    # a leading BREAK gives an all-padding first chunk
    chunks, _ = model.cond_stage_model.tokenize_line("BREAK cat")
    assert len(chunks) == 2 and chunks[0].tokens == [49406] + [49407] * 76


def test_comma_backtracking_moves_the_last_words_to_the_next_chunk(model, opts_set):
    opts_set("comma_padding_backtrack", 20)
    prompt = " ".join(["cat"] * 70) + ", " + " ".join(["dog"] * 10)
    chunks, token_count = model.cond_stage_model.tokenize_line(prompt)
    comma = model.cond_stage_model.comma_token
    dog = model.cond_stage_model.tokenize(["dog"])[0][0]
    assert len(chunks) == 2
    assert chunks[0].tokens[71] == comma and chunks[0].tokens[72:] == [49407] * 5  # padded after the comma
    assert chunks[1].tokens[1:11] == [dog] * 10
    assert token_count == 75 + 10

    opts_set("comma_padding_backtrack", 0)
    chunks, _ = model.cond_stage_model.tokenize_line(prompt)
    assert chunks[0].tokens[72:76] == [dog] * 4  # cut exactly at 75 tokens


def test_emphasis_original_scales_tokens_then_restores_the_mean(model, opts_set):
    opts_set("emphasis", "Original")
    plain = encode(model, "a cat on a mat")
    strong = encode(model, "a (cat:1.5) on a mat")
    weak = encode(model, "a [cat] on a mat")
    cat = 2  # BOS, "a", "cat"
    # relative to the unweighted tokens, the emphasized token is 1.5x (1/1.1x) its plain vector
    factor = strong[1] / plain[1]
    assert torch.allclose(strong[cat], plain[cat] * 1.5 * factor[0], rtol=1e-4, atol=1e-5)
    assert torch.allclose(weak[cat] * 1.1, plain[cat] * (weak[1] / plain[1])[0], rtol=1e-4, atol=1e-5)
    assert torch.allclose(strong.mean(), plain.mean(), atol=1e-6)
    # what the user asked for: beside the unweighted token before it, "cat" counts 1.65x more in (cat:1.5) than in
    # [cat] (the mean restoration scales whole prompts, so absolute norms depend on the text encoder)
    assert strong[cat].norm() / strong[1].norm() > weak[cat].norm() / weak[1].norm()


def test_emphasis_modes(model, opts_set):
    opts_set("emphasis", "No norm")
    plain = encode(model, "a cat on a mat")
    strong = encode(model, "a (cat:1.5) on a mat")
    assert torch.allclose(strong[2], plain[2] * 1.5, atol=1e-6)
    assert torch.allclose(strong[3:], plain[3:], atol=1e-6)

    opts_set("emphasis", "Ignore")
    assert torch.allclose(encode(model, "a (cat:1.5) on a mat"), plain, atol=1e-6)

    opts_set("emphasis", "None")
    chunks, token_count = model.cond_stage_model.tokenize_line("a (cat:1.5)")
    assert token_count > 2  # brackets and the number are literal text
    model.hijack.clear_comments()
    encode(model, "a (cat:1.5)")
    assert model.hijack.extra_generation_params["Emphasis"] == "None"


def test_clip_skip_uses_an_earlier_layer_and_the_final_layer_norm(model, opts_set):
    opts_set("CLIP_stop_at_last_layers", 1)
    last = encode(model, "a cat")
    opts_set("CLIP_stop_at_last_layers", 2)
    skipped = encode(model, "a cat")
    assert not torch.allclose(last, skipped)

    clip = model.cond_stage_model
    tokens = torch.tensor([clip.tokenize_line("a cat")[0][0].tokens])
    with torch.no_grad():
        out = clip.wrapped.transformer(input_ids=tokens, output_hidden_states=True)
        expected = clip.wrapped.transformer.text_model.final_layer_norm(out.hidden_states[-2])[0]
    # the default emphasis restores the mean: all weights are 1, so it is a no-op
    assert torch.allclose(skipped, expected, atol=1e-5)

    opts_set("CLIP_stop_at_last_layers", 12)  # deeper than this 3-layer model: clamped, no crash
    assert encode(model, "a cat").shape == (77, 64)


def test_prompt_editing_switches_conditioning_at_the_right_denoiser_call(model):
    steps = 10
    c = prompt_parser.get_multicond_learned_conditioning(model, ["a [cat:dog:3]"], steps)
    cat, dog = encode(model, "a cat"), encode(model, "a dog")
    for call in range(steps):
        conds_list, tensor = prompt_parser.reconstruct_multicond_batch(c, call)
        assert conds_list == [[(0, 1.0)]]
        expected = cat if call <= 3 else dog   # the counter starts at 0 and "<=" is used
        assert torch.allclose(tensor[0], expected, atol=1e-6), call


def test_second_order_sampler_schedule_uses_denoiser_calls(model):
    total = prompt_parser.total_schedule_steps(10, second_order=True)
    c = prompt_parser.get_multicond_learned_conditioning(model, ["a [cat:dog:0.5]"], total)
    cat = encode(model, "a cat")
    switched = [not torch.allclose(prompt_parser.reconstruct_multicond_batch(c, call)[1][0], cat, atol=1e-6) for call in range(total)]
    assert switched.index(True) == 11  # 0.5 of 20 denoiser calls, plus the "<=" call


def test_alternation_changes_every_step(model):
    uc = prompt_parser.get_learned_conditioning(model, ["[cat|dog]"], 4)
    cat, dog = encode(model, "cat"), encode(model, "dog")
    rows = [prompt_parser.reconstruct_cond_batch(uc, call)[0] for call in range(4)]
    # entries end at steps 1..4: call 0 and 1 use entry 1 (cat), call 2 entry 2 (dog), call 3 entry 3 (cat)
    assert torch.allclose(rows[0], cat, atol=1e-6) and torch.allclose(rows[1], cat, atol=1e-6)
    assert torch.allclose(rows[2], dog, atol=1e-6) and torch.allclose(rows[3], cat, atol=1e-6)


def test_and_sub_prompts_of_different_lengths_stack(model):
    long_prompt = " ".join(["cat"] * 80)
    c = prompt_parser.get_multicond_learned_conditioning(model, [f"a dog AND {long_prompt}:0.7"], 10)
    conds_list, tensor = prompt_parser.reconstruct_multicond_batch(c, 0)
    assert conds_list == [[(0, 1.0), (1, 0.7)]]
    assert tensor.shape == (2, 154, 64)
    dog = encode(model, "a dog")
    assert torch.allclose(tensor[0, :77], dog, atol=1e-6)
    assert torch.allclose(tensor[0, 77:], dog[-1:].repeat(77, 1), atol=1e-6)


@pytest.mark.parametrize("prompt", ["", "(((", "[a:b:", "a AND", "BREAK BREAK", "\\", "(x:1.2.3)", "[a|", ")]"])
def test_malformed_prompts_still_encode(model, prompt):
    c = prompt_parser.get_multicond_learned_conditioning(model, [prompt], 10)
    _, tensor = prompt_parser.reconstruct_multicond_batch(c, 0)
    assert tensor.shape[1] % 77 == 0 and torch.isfinite(tensor).all()


def test_apply_circular_switches_conv_padding(model):
    model.hijack.apply_circular(True)
    assert model.conv.padding_mode == "circular"
    model.hijack.apply_circular(False)
    assert model.conv.padding_mode == "zeros"


def test_prompt_lengths_without_a_model():
    hijack = sd_hijack.StableDiffusionModelHijack()
    assert hijack.get_prompt_lengths("a photo of a cat") == (5, 75)
    assert hijack.get_prompt_lengths(" ".join(["cat"] * 76)) == (76, 150)


def test_token_counter(opts_set):
    from modules import styles, token_counter
    opts_set("include_styles_into_token_counters", True)
    saved = shared.prompt_styles
    try:
        shared.prompt_styles = styles.StyleDatabase([])
        shared.prompt_styles.styles["long"] = styles.PromptStyle("long", " ".join(["cat"] * 80), "", None)
        assert token_counter.count_tokens("a photo of a cat") == (5, 75)
        assert token_counter.count_tokens("a photo of a cat", styles=["long"]) == (86, 150)
        opts_set("include_styles_into_token_counters", False)
        assert token_counter.count_tokens("a photo of a cat", styles=["long"]) == (5, 75)
        # tags and comments are not counted; AND parts and schedule variants are counted separately (max shown)
        assert token_counter.count_tokens("a <lora:x:1> cat # a comment") == (2, 75)
        assert token_counter.count_tokens("cat AND " + " ".join(["dog"] * 80)) == (80, 150)
        assert token_counter.count_tokens("[cat:" + " ".join(["dog"] * 80) + ":5]", steps=10) == (80, 150)
        # the negative prompt is not split on AND
        assert token_counter.count_tokens("cat AND dog", is_positive=False) == (3, 75)
        assert token_counter.count_tokens("[[[(((", steps=0) == (0, 75)
    finally:
        shared.prompt_styles = saved
