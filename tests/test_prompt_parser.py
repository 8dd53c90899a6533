"""The prompt language: the reference UI's worked examples, to the float, plus the rules around them."""
import random

import lark
import pytest
import torch

from modules import prompt_parser
from modules.prompt_parser import (
    get_learned_conditioning_prompt_schedules,
    get_multicond_prompt_list,
    parse_prompt_attention,
)


def schedule(prompt, steps=10, hires_steps=None, use_old_scheduling=False):
    return get_learned_conditioning_prompt_schedules([prompt], steps, hires_steps, use_old_scheduling)[0]


# The reference's doctests of get_learned_conditioning_prompt_schedules (10 steps).
@pytest.mark.parametrize("prompt, expected", [
    ("test", [[10, 'test']]),
    ("a [b:3]", [[3, 'a '], [10, 'a b']]),
    ("a [b: 3]", [[3, 'a '], [10, 'a b']]),
    ("a [[[b]]:2]", [[2, 'a '], [10, 'a [[b]]']]),
    ("[(a:2):3]", [[3, ''], [10, '(a:2)']]),
    ("a [b : c : 1] d", [[1, 'a b  d'], [10, 'a  c  d']]),
    ("a[b:[c:d:2]:1]e", [[1, 'abe'], [2, 'ace'], [10, 'ade']]),
    ("a [unbalanced", [[10, 'a [unbalanced']]),
    ("a [b:.5] c", [[5, 'a  c'], [10, 'a b c']]),
    # the reference's doctest expects [[5, 'a  c'], [10, 'a {b|d{ c']] but its own code gives this ("|" is not plain)
    ("a [{b|d{:.5] c", [[10, 'a [{b|d{:.5] c']]),
    ("((a][:b:c [d:3]", [[3, '((a][:b:c '], [10, '((a][:b:c d']]),
    ("[a|(b:1.1)]", [[1, 'a'], [2, '(b:1.1)'], [3, 'a'], [4, '(b:1.1)'], [5, 'a'], [6, '(b:1.1)'], [7, 'a'],
                     [8, '(b:1.1)'], [9, 'a'], [10, '(b:1.1)']]),
    ("[fe|]male", [[1, 'female'], [2, 'male'], [3, 'female'], [4, 'male'], [5, 'female'], [6, 'male'],
                   [7, 'female'], [8, 'male'], [9, 'female'], [10, 'male']]),
    ("[fe|||]male", [[1, 'female'], [2, 'male'], [3, 'male'], [4, 'male'], [5, 'female'], [6, 'male'],
                     [7, 'male'], [8, 'male'], [9, 'female'], [10, 'male']]),
])
def test_reference_schedule_examples(prompt, expected):
    assert schedule(prompt) == expected


def test_reference_hires_schedule_examples():
    assert schedule("a [b:.5] c", 10, 10) == [[10, 'a b c']]
    assert schedule("a [b:1.5] c", 10, 10) == [[5, 'a  c'], [10, 'a b c']]


def test_hires_integer_steps_count_from_first_pass():
    # 20 base steps + 10 hires steps: step 25 is 5 steps into the hires pass
    assert schedule("[a:b:25]", 20, 10) == [[5, 'a'], [10, 'b']]
    # a first-pass-only edit is already resolved for the whole hires pass
    assert schedule("[a:b:5]", 20, 10) == [[10, 'b']]


def test_old_scheduling_reads_numbers_below_one_as_fractions():
    assert schedule("[a:b:0.5]", 10, use_old_scheduling=True) == [[5, 'a'], [10, 'b']]
    assert schedule("[a:b:3]", 10, use_old_scheduling=True) == [[3, 'a'], [10, 'b']]
    # new scheduling: "1.0" has a dot, so it is a fraction (all of the steps) while "1" is step one
    assert schedule("[a:b:1.0]", 10) == [[10, 'a']]
    assert schedule("[a:b:1]", 10) == [[1, 'a'], [10, 'b']]
    # old scheduling ignores the hires offsets
    assert schedule("[a:b:0.5]", 10, 20, use_old_scheduling=True) == [[5, 'a'], [10, 'b']]


def test_add_and_remove_forms():
    assert schedule("a [to:4] b", 10) == [[4, 'a  b'], [10, 'a to b']]
    assert schedule("a [from::4] b", 10) == [[4, 'a from b'], [10, 'a  b']]
    assert schedule("[a:b:25]", 10) == [[10, 'a']]      # past the end: never switches


def test_identical_prompts_share_one_schedule_object():
    a, b = get_learned_conditioning_prompt_schedules(["x [y:2]", "x [y:2]"], 10)
    assert a is b


def test_long_bracket_heavy_prompt_parses_fast_and_right():
    piece = "(masterpiece:1.2), best quality, [cat:dog:0.5], [red|blue] hair"
    result = schedule(", ".join([piece] * 30), 20)
    assert len(result) == 20
    assert result[0][1].startswith("(masterpiece:1.2), best quality, cat, red hair, ")
    assert result[-1][1].startswith("(masterpiece:1.2), best quality, dog, blue hair, ")


def test_a_group_with_too_many_brackets_is_used_as_written():
    """12000 stray "[" in an API request's negative prompt kept the Earley parser busy for minutes until the server
    ran out of memory; past MAX_PARSED_BRACKETS in one parse the text is used as written (emphasis still applies)."""
    stray = "[a:b:5] " * 60 + "["
    assert schedule(stray, 20) == [[20, stray]]
    assert schedule("[" * 12000, 20) == [[20, "[" * 12000]]
    assert len(schedule("[a:b:5] (x:1.2), " * 400, 20)) == 2  # many small groups are parsed one by one, as before
    assert len(schedule("[a:b:5] " * 30 + "[", 20)) == 2  # a stray bracket among few groups: still parsed whole


def _whole_prompt_schedule(prompt, steps=10):
    try:
        tree = prompt_parser.schedule_parser.parse(prompt)
    except lark.exceptions.LarkError:
        return [[steps, prompt]]
    return prompt_parser._schedule_from_trees([tree], steps, 0, 0, False)


def _random_prompt(rng, depth=0):
    out = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.randint(0, 9 if depth < 2 else 2)
        if kind == 0:
            out.append(rng.choice(["a", "b c", " ", ", ", "d:", "\\(", "e BREAK f", ":"]))
        elif kind == 1:
            out.append(rng.choice(["x", "y ", " z"]))
        elif kind == 2:
            out.append(rng.choice([",", " , ", "q"]))
        elif kind == 3:
            out.append("(" + _random_prompt(rng, depth + 1) + ")")
        elif kind == 4:
            out.append("(" + _random_prompt(rng, depth + 1) + ":" + rng.choice(["1.2", "0.5", " 2 "]) + ")")
        elif kind == 5:
            out.append("[" + _random_prompt(rng, depth + 1) + "]")
        elif kind == 6:
            out.append("[" + _random_prompt(rng, depth + 1) + ":" + _random_prompt(rng, depth + 1) + ":" + rng.choice(["3", ".5", " 2"]) + "]")
        elif kind == 7:
            out.append("[" + _random_prompt(rng, depth + 1) + ":" + rng.choice(["3", ".5"]) + "]")
        elif kind == 8:
            out.append("[" + _random_prompt(rng, depth + 1) + "|" + rng.choice(["", "y"]) + "]")
        else:
            out.append("[" + _random_prompt(rng, depth + 1) + "::" + rng.choice(["3", ".5"]) + "]")
    return "".join(out)


def test_piecewise_parsing_matches_whole_prompt_parsing():
    # long prompts are parsed piece by piece for speed; that must never change a schedule
    rng = random.Random(1234)
    checked = 0
    while checked < 80:
        prompt = _random_prompt(rng)
        if len(prompt) > 40 or "[" not in prompt:
            continue
        assert schedule(prompt) == _whole_prompt_schedule(prompt), prompt
        checked += 1


@pytest.mark.parametrize("prompt", [
    "", "[", "]", "(((", ")))", "[a:b:c:d]", "[a:1e999]", "[a|", "a | b", "\\", "[::]", "[:]", "(:)", "[a:b:-3]",
    "(a:1.2.3)", "AND", "AND AND", ":", "a:b:c", "[[[[[[[[[[x", "<lora:x:1>", "\n\n", "\\\n[a:2]", "x" * 3000,
])
def test_malformed_prompts_never_raise(prompt):
    result = schedule(prompt)
    assert result[-1][0] == 10
    parse_prompt_attention(prompt)
    get_multicond_prompt_list([prompt])


# The reference's doctests of parse_prompt_attention, with exact float equality.
@pytest.mark.parametrize("text, expected", [
    ('normal text', [['normal text', 1.0]]),
    ('an (important) word', [['an ', 1.0], ['important', 1.1], [' word', 1.0]]),
    ('(unbalanced', [['unbalanced', 1.1]]),
    ('\\(literal\\]', [['(literal]', 1.0]]),
    ('(unnecessary)(parens)', [['unnecessaryparens', 1.1]]),
    ('a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).', [
        ['a ', 1.0], ['house', 1.5730000000000004], [' ', 1.1], ['on', 1.0], [' a ', 1.1], ['hill', 0.55],
        [', sun, ', 1.1], ['sky', 1.4641000000000006], ['.', 1.1]]),
])
def test_reference_attention_examples(text, expected):
    assert parse_prompt_attention(text) == expected


def test_attention_rules():
    assert parse_prompt_attention("[less]") == [["less", 1 / 1.1]]
    assert parse_prompt_attention("(a: 1.5 )") == [["a", 1.5]]
    assert parse_prompt_attention("") == [["", 1.0]]
    assert parse_prompt_attention("\\\\") == [["\\", 1.0]]
    assert parse_prompt_attention("a ) b ] c") == [["a ) b ] c", 1.0]]
    assert parse_prompt_attention("a : b") == [["a : b", 1.0]]
    assert parse_prompt_attention("[unbalanced") == [["unbalanced", 1 / 1.1]]


def test_break_splits_text_even_inside_brackets():
    assert parse_prompt_attention("a BREAK b") == [["a", 1.0], ["BREAK", -1], ["b", 1.0]]
    # the reference turns this BREAK into ['BREAK', -1.1] and then ignores it; here it stays a BREAK
    assert parse_prompt_attention("(a BREAK b)") == [["a", 1.1], ["BREAK", -1], ["b", 1.1]]
    assert parse_prompt_attention("aBREAKb") == [["aBREAKb", 1.0]]
    assert parse_prompt_attention("break") == [["break", 1.0]]


def test_and_splits_with_weights():
    res_indexes, flat, _ = get_multicond_prompt_list(["a AND b:0.5", "x:1.5", "(x:1.5)", "a ANDdog and c", "b:0.5"])
    assert flat[:5] == ["a", " b", "x", "(x:1.5)", "a ANDdog and c"]
    # leading whitespace is kept, so "b" is not the same sub-prompt as " b"
    assert flat[5:] == ["b"]
    assert res_indexes == [[(0, 1.0), (1, 0.5)], [(2, 1.5)], [(3, 1.0)], [(4, 1.0)], [(5, 0.5)]]
    assert get_multicond_prompt_list(["a AND b:-0.5"])[0] == [[(0, 1.0), (1, -0.5)]]


def test_and_deduplicates_sub_prompts_across_the_batch():
    res_indexes, flat, _ = get_multicond_prompt_list(["cat AND dog", "cat AND dog:2"])
    assert flat == ["cat", " dog"]
    assert res_indexes == [[(0, 1.0), (1, 1.0)], [(0, 1.0), (1, 2.0)]]


class _CountingModel:
    """Stands in for the model: a prompt's conditioning is a (2, 3) tensor filled with its length."""

    def __init__(self):
        self.calls = []

    def get_learned_conditioning(self, texts):
        self.calls.append(list(texts))
        return torch.stack([torch.full((2, 3), float(len(t))) for t in texts])


def test_learned_conditioning_encodes_each_schedule_once():
    model = _CountingModel()
    conds = prompt_parser.get_learned_conditioning(model, ["ab [cd:2]", "ab [cd:2]", "xyz"], 10)
    assert model.calls == [["ab ", "ab cd"], ["xyz"]]
    assert [c.end_at_step for c in conds[0]] == [2, 10]
    assert conds[0] is conds[1]


def test_reconstruct_switches_at_the_denoiser_call_after_when():
    model = _CountingModel()
    c = prompt_parser.get_multicond_learned_conditioning(model, ["ab [cd:3]"], 10)
    # the denoiser counter starts at 0 and "<=" is used: calls 0..3 use the "before" text, 4.. the "after" text
    seen = [prompt_parser.reconstruct_multicond_batch(c, step)[1][0, 0, 0].item() for step in range(10)]
    assert seen == [3.0] * 4 + [5.0] * 6


def test_second_order_samplers_double_the_schedule():
    model = _CountingModel()
    total = prompt_parser.total_schedule_steps(10, second_order=True)
    assert total == 20
    c = prompt_parser.get_multicond_learned_conditioning(model, ["ab [cd:0.5]"], total)
    seen = [prompt_parser.reconstruct_multicond_batch(c, call)[1][0, 0, 0].item() for call in range(20)]
    assert seen == [3.0] * 11 + [5.0] * 9   # halfway through the 20 denoiser calls (plus the "<=" call)


def test_multicond_batch_layout_and_padding():
    class Model:
        def get_learned_conditioning(self, texts):
            return torch.stack([torch.full((4 if "long" in t else 2, 3), float(len(t))) for t in texts])

    c = prompt_parser.get_multicond_learned_conditioning(Model(), ["a AND long b:0.5", "c"], 10)
    conds_list, tensor = prompt_parser.reconstruct_multicond_batch(c, 0)
    assert conds_list == [[(0, 1.0), (1, 0.5)], [(2, 1.0)]]
    assert tensor.shape == (3, 4, 3)
    # the shorter conds are padded by repeating their last vector
    assert torch.equal(tensor[0, 2:], tensor[0, 1:2].repeat(2, 1))


def test_reconstruct_cond_batch_picks_per_prompt_entries():
    model = _CountingModel()
    conds = prompt_parser.get_learned_conditioning(model, ["[a:bcd:2]", "xy"], 10)
    batch = prompt_parser.reconstruct_cond_batch(conds, 2)
    assert batch[:, 0, 0].tolist() == [1.0, 2.0]
    batch = prompt_parser.reconstruct_cond_batch(conds, 3)
    assert batch[:, 0, 0].tolist() == [3.0, 2.0]


def test_sd_conditioning_keeps_its_attributes():
    texts = prompt_parser.SdConditioning(["a"], is_negative_prompt=True, width=640, height=512)
    copy = prompt_parser.SdConditioning(["b"], copy_from=texts)
    assert (copy.is_negative_prompt, copy.width, copy.height) == (True, 640, 512)
    _, flat, _ = get_multicond_prompt_list(texts)
    assert isinstance(flat, prompt_parser.SdConditioning) and flat.is_negative_prompt


# ---- before the prompt language: comments and extra-network tags ------------------------------------------------

def test_comments_are_stripped():
    from modules.prompt_comments import strip_comments
    assert strip_comments("a cat # not this\nsitting") == "a cat \nsitting"
    assert strip_comments("# whole line\na cat") == "\na cat"
    assert strip_comments("a cat\n# last line") == "a cat\n"
    assert strip_comments("no comments") == "no comments"
    assert strip_comments("") == ""


def test_extra_network_tags_are_removed_and_parsed():
    from modules import extra_networks
    prompt, data = extra_networks.parse_prompt("a cat <lora:cute:0.8> on <hypernet:h:1> a mat <lora:x:1:te=0.5>")
    assert prompt == "a cat  on  a mat "
    assert [p.items for p in data["lora"]] == [["cute", "0.8"], ["x", "1", "te=0.5"]]
    assert data["lora"][1].positional == ["x", "1"] and data["lora"][1].named == {"te": "0.5"}
    assert [p.items for p in data["hypernet"]] == [["h", "1"]]
    # not tags: no name, spaces in the name, nothing after the colon
    assert extra_networks.parse_prompt("<:x> <a b:1> <lora:>")[0] == "<:x> <a b:1> <lora:>"

    prompts, data = extra_networks.parse_prompts(["p1 <lora:a:1>", "p2 <lora:b:1>"])
    assert prompts == ["p1 ", "p2 "]
    assert [p.items for p in data["lora"]] == [["a", "1"]]  # the first prompt's tags stand for the batch


def test_extra_network_registry_activates_every_network():
    from modules import extra_networks

    calls = []

    class Recorder(extra_networks.ExtraNetwork):
        def activate(self, p, params_list):
            calls.append(("activate", self.name, [x.items for x in params_list]))

        def deactivate(self, p):
            calls.append(("deactivate", self.name))

    class Broken(extra_networks.ExtraNetwork):
        def activate(self, p, params_list):
            raise RuntimeError("boom")

        def deactivate(self, p):
            raise RuntimeError("boom")

    saved = dict(extra_networks.extra_network_registry)
    try:
        extra_networks.register_extra_network(Recorder("rec"))
        extra_networks.register_extra_network(Recorder("idle"))
        extra_networks.register_extra_network(Broken("broken"))
        _, data = extra_networks.parse_prompt("x <rec:a:1> <broken:b> <unknown:c>")
        extra_networks.activate(None, data)   # a failing network is reported, the others still run
        extra_networks.deactivate(None, data)
        assert ("activate", "rec", [["a", "1"]]) in calls
        assert ("activate", "idle", []) in calls
        assert ("deactivate", "rec") in calls and ("deactivate", "idle") in calls
    finally:
        extra_networks.extra_network_registry.clear()
        extra_networks.extra_network_registry.update(saved)
