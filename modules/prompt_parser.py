"""The prompt language: AND (composable diffusion), [prompt editing:when] and [alter|nation], (emphasis:1.2).

A prompt like "a [mountain:lake:0.25] at [dawn|dusk]" is first split on AND, then each part becomes a schedule of
plain texts (one per stretch of denoiser calls), and each of those texts is parsed for emphasis when it is encoded.

Worked example, 100 steps:
    "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
    -> [[25, 'fantasy landscape with a mountain and an oak'],
        [75, 'fantasy landscape with a lake and an oak'],
        [100, 'fantasy landscape with a lake and a christmas tree']]
"""
from __future__ import annotations

import functools
import re
from collections import namedtuple

import lark

# The scheduling grammar of the reference UI (Earley parser; `plain` excludes \ [ ] ( ) : | unless escaped).
schedule_parser = lark.Lark(r"""
!start: (prompt | /[][():]/+)*
prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
!emphasized: "(" prompt ")"
        | "(" prompt ":" prompt ")"
        | "[" prompt "]"
scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
alternate: "[" prompt ("|" [prompt])+ "]"
WHITESPACE: /\s+/
plain: /([^\\\[\]():|]|\\.)+/
%import common.SIGNED_NUMBER -> NUMBER
""")


def _schedule_for(prompt, steps, int_offset, flt_offset, use_old_scheduling):
    """[[end_at_step, text], ...] for one prompt; a prompt that does not parse is used verbatim for all steps."""
    if "[" not in prompt:
        return [[steps, prompt]]  # only [...] can schedule or alternate; everything else is re-emitted verbatim
    try:
        trees = _parse_pieces(prompt)
        return _schedule_from_trees(trees, steps, int_offset, flt_offset, use_old_scheduling)
    except (lark.exceptions.LarkError, ValueError, OverflowError, RecursionError):
        # malformed ("a [unbalanced"), absurd numbers ("[a:1e999]") or absurd nesting: the text is used as written
        return [[steps, prompt]]


def _parse_pieces(prompt):
    """Parse trees whose concatenation is the prompt.

    The Earley parser is very slow on long prompts with many brackets (its regex terminals may match any prefix,
    so ambiguity explodes), so a prompt whose brackets are well nested is cut at top level between bracket groups
    and each piece is parsed on its own; the result is the same (tests compare both on random prompts). Anything
    else, or a piece that does not parse cleanly, goes through the parser whole, as the reference does.
    """
    pieces = split_top_level(prompt)
    if pieces is not None and len(pieces) > 1:
        try:
            trees = [_parse_cached(piece) for piece in pieces]
            # stray top-level brackets/colons make the parse ambiguous in ways that depend on the whole text
            if not any(isinstance(child, lark.Token) for tree in trees for child in tree.children):
                return trees
        except lark.exceptions.LarkError:
            pass
    return [_parse_cached(prompt)]


# The Earley parse of one text grows about with the cube of its bracket count (100 brackets: about a second; 12000
# stray "[" from an API client took minutes and all the memory of the machine). A text with more is used as written,
# like one that does not parse: its emphasis still applies, [a:b:when] and [a|b] inside it do not.
MAX_PARSED_BRACKETS = 100


@functools.lru_cache(maxsize=1024)
def _parse_cached(text):
    brackets = sum(text.count(c) for c in "[]()")
    if brackets > MAX_PARSED_BRACKETS:
        raise ValueError(f"{brackets} brackets in one group or around a stray bracket: more than the prompt "
                         f"parser takes ({MAX_PARSED_BRACKETS})")
    return schedule_parser.parse(text)


def split_top_level(prompt):
    """Cuts a prompt before and after each top-level (...) or [...] group; None if brackets are not well nested."""
    closer_for = {"(": ")", "[": "]"}
    pieces = []
    expected = []
    start = 0
    i = 0
    while i < len(prompt):
        ch = prompt[i]
        if ch == "\\":
            i += 2
            continue
        if ch in closer_for:
            if not expected and i > start:
                pieces.append(prompt[start:i])
                start = i
            expected.append(closer_for[ch])
        elif ch in ")]":
            if not expected or expected.pop() != ch:
                return None
            if not expected:
                pieces.append(prompt[start:i + 1])
                start = i + 1
        i += 1
    if expected:
        return None
    if start < len(prompt):
        pieces.append(prompt[start:])
    return pieces


def _schedule_from_trees(trees, steps, int_offset, flt_offset, use_old_scheduling):
    when_of = {}  # id(scheduled node) -> last step that still uses the "before" text
    breakpoints = {steps}
    for tree in trees:
        for node in tree.iter_subtrees():
            if node.data == "scheduled":
                literal = str(node.children[-2])
                value = float(literal)
                if use_old_scheduling:
                    value = value * steps if value < 1 else value
                elif "." in literal:
                    value = (value - flt_offset) * steps   # a fraction of the pass
                else:
                    value = value - int_offset             # an absolute step
                when = min(steps, int(value))
                when_of[id(node)] = when
                if when >= 1:
                    breakpoints.add(when)
            elif node.data == "alternate":
                breakpoints.update(range(1, steps + 1))

    def render(node, step):
        if node is None:
            return ""
        if isinstance(node, lark.Token):
            return str(node)
        if node.data == "scheduled":
            before, after = node.children[0], node.children[1]
            return render(before, step) if step <= when_of[id(node)] else render(after, step)
        if node.data == "alternate":
            options = node.children
            return render(options[(step - 1) % len(options)], step)
        return "".join(render(child, step) for child in node.children)

    return [[step, "".join(render(tree, step) for tree in trees)] for step in sorted(breakpoints)]


def get_learned_conditioning_prompt_schedules(prompts, base_steps, hires_steps=None, use_old_scheduling=False):
    """
    Per prompt, a list of [end_at_step, text]: the text is used for denoiser steps <= end_at_step.

    `when` with a "." is a fraction of the pass, otherwise an absolute step. For the hires pass (hires_steps given),
    fractions run from 1 to 2 and integer steps count from the start of the first pass.

    >>> g = lambda p: get_learned_conditioning_prompt_schedules([p], 10)[0]
    >>> g("a [b:3]")
    [[3, 'a '], [10, 'a b']]
    >>> g("a [b:.5] c")
    [[5, 'a  c'], [10, 'a b c']]
    """
    if hires_steps is None or use_old_scheduling:
        int_offset, flt_offset, steps = 0, 0, base_steps
    else:
        int_offset, flt_offset, steps = base_steps, 1.0, hires_steps

    cache = {}
    result = []
    for prompt in prompts:
        if prompt not in cache:
            cache[prompt] = _schedule_for(prompt, steps, int_offset, flt_offset, use_old_scheduling)
        result.append(cache[prompt])
    return result


def total_schedule_steps(steps, second_order=False):
    """How many denoiser calls a schedule spans: samplers that call the denoiser twice per step (Heun, DPM2,
    DPM++ SDE, DPM++ 2S a, Restart) build their schedules for twice the steps, so integer `when` values count
    denoiser calls there while fractions land at the same place (A1111 `SamplerData.total_steps`)."""
    return steps * 2 if second_order else steps


ScheduledPromptConditioning = namedtuple("ScheduledPromptConditioning", ["end_at_step", "cond"])


class SdConditioning(list):
    """A list of prompts that also says what they are for (negative or not, image size), for models that care."""

    def __init__(self, prompts, is_negative_prompt=False, width=None, height=None, copy_from=None):
        super().__init__()
        self.extend(prompts)
        if copy_from is None:
            copy_from = prompts
        self.is_negative_prompt = is_negative_prompt or getattr(copy_from, "is_negative_prompt", False)
        self.width = width or getattr(copy_from, "width", None)
        self.height = height or getattr(copy_from, "height", None)


class DictWithShape(dict):
    """Conditioning of models whose text encoders return several tensors (SDXL: crossattn + vector)."""

    def __init__(self, x, shape=None):
        super().__init__()
        self.update(x)

    @property
    def shape(self):
        return self["crossattn"].shape


def get_learned_conditioning(model, prompts: SdConditioning | list[str], steps, hires_steps=None, use_old_scheduling=False):
    """Encodes each prompt's schedule: per prompt, a list of ScheduledPromptConditioning(end_at_step, cond).

    All scheduled variants of one prompt are encoded in one call to `model.get_learned_conditioning`, and identical
    prompts are encoded once.
    """
    schedules = get_learned_conditioning_prompt_schedules(prompts, steps, hires_steps, use_old_scheduling)
    cache = {}
    result = []
    for prompt, schedule in zip(prompts, schedules):
        if prompt in cache:
            result.append(cache[prompt])
            continue

        texts = SdConditioning([text for _, text in schedule], copy_from=prompts)
        conds = model.get_learned_conditioning(texts)

        cond_schedule = []
        for i, (end_at_step, _) in enumerate(schedule):
            cond = DictWithShape({k: v[i] for k, v in conds.items()}) if isinstance(conds, dict) else conds[i]
            cond_schedule.append(ScheduledPromptConditioning(end_at_step, cond))

        cache[prompt] = cond_schedule
        result.append(cond_schedule)
    return result


re_AND = re.compile(r"\bAND\b")
re_weight = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


def get_multicond_prompt_list(prompts: SdConditioning | list[str]):
    """Splits prompts on AND into weighted sub-prompts.

    Returns (res_indexes, prompt_flat_list, prompt_indexes): res_indexes[i] = [(index into prompt_flat_list, weight)]
    for prompt i; identical sub-prompts across the batch share one entry of prompt_flat_list.
    """
    res_indexes = []
    prompt_indexes = {}
    prompt_flat_list = SdConditioning([], copy_from=prompts) if isinstance(prompts, SdConditioning) else []

    for prompt in prompts:
        indexes = []
        for subprompt in re_AND.split(prompt):
            match = re_weight.search(subprompt)
            text, weight = match.groups() if match is not None else (subprompt, 1.0)
            weight = float(weight) if weight is not None else 1.0

            index = prompt_indexes.get(text)
            if index is None:
                index = len(prompt_flat_list)
                prompt_flat_list.append(text)
                prompt_indexes[text] = index
            indexes.append((index, weight))
        res_indexes.append(indexes)

    return res_indexes, prompt_flat_list, prompt_indexes


class ComposableScheduledPromptConditioning:
    def __init__(self, schedules, weight=1.0):
        self.schedules: list[ScheduledPromptConditioning] = schedules
        self.weight: float = weight


class MulticondLearnedConditioning:
    def __init__(self, shape, batch):
        self.shape: tuple = shape  # samplers that only look at the batch size read this
        self.batch: list[list[ComposableScheduledPromptConditioning]] = batch


def get_multicond_learned_conditioning(model, prompts, steps, hires_steps=None, use_old_scheduling=False) -> MulticondLearnedConditioning:
    """Like get_learned_conditioning, but each prompt is first split on AND into weighted sub-prompts
    (composable diffusion: uncond + cfg * sum(w_i * (cond_i - uncond)))."""
    res_indexes, prompt_flat_list, _ = get_multicond_prompt_list(prompts)
    learned = get_learned_conditioning(model, prompt_flat_list, steps, hires_steps, use_old_scheduling)

    batch = [[ComposableScheduledPromptConditioning(learned[i], weight) for i, weight in indexes] for indexes in res_indexes]
    return MulticondLearnedConditioning(shape=(len(prompts),), batch=batch)


def _entry_for_step(schedule, current_step):
    """The first entry whose end_at_step is >= current_step (the denoiser call counter, starting at 0)."""
    for entry in schedule:
        if current_step <= entry.end_at_step:
            return entry
    return schedule[0]


def stack_conds(tensors):
    """Stacks conds of different token lengths by repeating each shorter one's last vector to the longest length."""
    token_count = max(x.shape[0] for x in tensors)
    padded = []
    for t in tensors:
        if t.shape[0] != token_count:
            t = torch.vstack([t, t[-1:].repeat([token_count - t.shape[0], 1])])
        padded.append(t)
    return torch.stack(padded)


def reconstruct_cond_batch(c: list[list[ScheduledPromptConditioning]], current_step):
    """One batch tensor of the conds in effect at `current_step` (used for the negative prompt)."""
    param = c[0][0].cond
    is_dict = isinstance(param, dict)

    if is_dict:
        res = {k: torch.zeros((len(c),) + v.shape, device=v.device, dtype=v.dtype) for k, v in param.items()}
        res = DictWithShape(res)
    else:
        res = torch.zeros((len(c),) + param.shape, device=param.device, dtype=param.dtype)

    for i, schedule in enumerate(c):
        cond = _entry_for_step(schedule, current_step).cond
        if is_dict:
            for k, v in cond.items():
                res[k][i] = v
        else:
            res[i] = cond
    return res


def reconstruct_multicond_batch(c: MulticondLearnedConditioning, current_step):
    """(conds_list, tensor): the rows of all sub-prompts in effect at `current_step`, and per image
    conds_list[i] = [(row_index, weight), ...]. Rows of different token lengths are padded (stack_conds)."""
    param = c.batch[0][0].schedules[0].cond

    tensors = []
    conds_list = []
    for composable_prompts in c.batch:
        conds_for_image = []
        for composable in composable_prompts:
            conds_for_image.append((len(tensors), composable.weight))
            tensors.append(_entry_for_step(composable.schedules, current_step).cond)
        conds_list.append(conds_for_image)

    if isinstance(tensors[0], dict):
        keys = list(tensors[0].keys())
        stacked = {k: stack_conds([x[k] for x in tensors]) for k in keys}
        stacked = DictWithShape(stacked)
    else:
        stacked = stack_conds(tensors).to(device=param.device, dtype=param.dtype)

    return conds_list, stacked


re_attention = re.compile(r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""", re.X)

re_break = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text):
    """
    Splits text into [text, weight] pairs: (x) multiplies x's weight by 1.1, [x] by 1/1.1, (x:1.5) by 1.5;
    \\( \\) \\[ \\] \\\\ are literal characters; BREAK becomes ["BREAK", -1]; unclosed brackets close at the end.

    >>> parse_prompt_attention('an (important) word')
    [['an ', 1.0], ['important', 1.1], [' word', 1.0]]

    Unlike the reference UI, BREAK inside brackets is still a BREAK (the reference multiplies its -1 marker and then
    no longer recognises it): brackets never change a BREAK entry.
    """
    res = []
    round_brackets = []
    square_brackets = []

    def multiply_range(start, multiplier):
        # in place and innermost first, so floats match the reference exactly (1.1*1.1*1.1 != 1.1**3)
        for entry in res[start:]:
            if not _is_break(entry):
                entry[1] *= multiplier

    for m in re_attention.finditer(text):
        token = m.group(0)
        weight = m.group(1)

        if token.startswith("\\"):
            res.append([token[1:], 1.0])
        elif token == "(":
            round_brackets.append(len(res))
        elif token == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets and _is_number(weight):
            multiply_range(round_brackets.pop(), float(weight))
        elif token == ")" and round_brackets:
            multiply_range(round_brackets.pop(), 1.1)
        elif token == "]" and square_brackets:
            multiply_range(square_brackets.pop(), 1 / 1.1)
        else:
            for i, part in enumerate(re_break.split(token)):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])

    for start in round_brackets:
        multiply_range(start, 1.1)
    for start in square_brackets:
        multiply_range(start, 1 / 1.1)

    if not res:
        res = [["", 1.0]]

    # merge neighbours with identical weights
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1] and not _is_break(res[i]) and not _is_break(res[i + 1]):
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1

    return res


def _is_number(text):
    # "(a:1.2.3)" matches the weight pattern but is no number; the reference crashes on it, here it stays text
    try:
        float(text)
        return True
    except ValueError:
        return False


def _is_break(entry):
    return entry[1] == -1 and entry[0] == "BREAK"


import torch  # noqa: E402  (imported last so the pure-text functions above load fast for doctests)
