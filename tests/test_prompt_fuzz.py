"""No prompt, however malformed, raises: random bracket/colon/pipe/backslash soup through every prompt entry point."""
import random

import pytest

from modules import prompt_parser, token_counter

PIECES = list("()[]:|\\.,0123456789 \n-+ab#<>") + ["AND", "BREAK", "1e999", ":1.5)", "[a:b:", "::", "<lora:x:1>", "nan"]


def random_prompts(seed, count=300, longest=30):
    rnd = random.Random(seed)
    for _ in range(count):
        yield "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, longest)))


@pytest.mark.parametrize("seed", range(3))
def test_random_prompts_never_raise(seed):
    for text in random_prompts(seed):
        for text_part, weight in prompt_parser.parse_prompt_attention(text):
            assert isinstance(text_part, str) and isinstance(weight, float | int)
        for steps, hires_steps, old in ((1, None, False), (10, None, False), (10, 5, False), (10, 5, True)):
            schedule = prompt_parser.get_learned_conditioning_prompt_schedules([text], steps, hires_steps, old)[0]
            assert schedule and schedule[-1][0] == (hires_steps if hires_steps and not old else steps)
            assert all(isinstance(step, int) and isinstance(variant, str) for step, variant in schedule)
        indexes, flat, _ = prompt_parser.get_multicond_prompt_list([text])
        assert len(indexes[0]) >= 1 and all(isinstance(w, float) for _, w in indexes[0])


def test_token_counter_never_raises_without_a_model():
    # no model loaded in this test: the counter falls back to the shipped tokenizer and never raises
    for text in random_prompts(7, count=100):
        count, max_length = token_counter.count_tokens(text, steps=10)
        assert 0 <= count <= max_length and max_length % 75 == 0


@pytest.mark.parametrize("text", [
    "(" * 3000, "[" * 60 + "a:b:1" + "]" * 60, "[a:b:1e999]", "[a:b:-1e999]", "(a:1e999)", "(a:.)", "(a:-)",
    "[" * 60 + "a|b" + "]" * 60, "\\" * 101, "[a:b:99999999999999999999999]", "a" * 20000,
])
def test_absurd_prompts_do_not_raise(text):
    prompt_parser.parse_prompt_attention(text)
    assert prompt_parser.get_learned_conditioning_prompt_schedules([text], 10)[0][-1][0] == 10
    assert prompt_parser.get_learned_conditioning_prompt_schedules([text], 10, 10)[0][-1][0] == 10
