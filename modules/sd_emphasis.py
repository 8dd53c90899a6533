"""Emphasis modes: how the (word:1.2) weights of a prompt change the text encoder's output.

The text encoder wrapper fills `tokens`, `multipliers` and `z` (B, 77, C) and calls `after_transformers()`; the mode
then changes `z` in place of the wrapper. The mode in use is the setting `emphasis` (shared.opts.emphasis).
"""
from __future__ import annotations

import torch


class Emphasis:
    """Base class: a mode that leaves the encoder output alone."""

    name: str = "Base"
    description: str = ""

    tokens: list[list[int]]
    multipliers: torch.Tensor
    z: torch.Tensor

    # whether the prompt is parsed for (brackets) and BREAK at all
    parses_prompt = True
    # whether the parsed weights are kept (False: every token gets weight 1.0)
    uses_weights = True

    def after_transformers(self):
        """Called with self.z set to the encoder output; modifies self.z."""


class EmphasisNone(Emphasis):
    name = "None"
    description = "disable the mechanism entirely and treat (:.1.1) as literal characters"
    parses_prompt = False
    uses_weights = False


class EmphasisIgnore(Emphasis):
    # Brackets and weights are still syntax (they are removed and BREAK still splits chunks), but the weights never
    # reach the encoder output. The reference computes the multipliers and then ignores them: same tokens, same result.
    name = "Ignore"
    description = "treat all emphasised words as if they have no emphasis"
    uses_weights = False


class EmphasisOriginal(Emphasis):
    name = "Original"
    description = "the original emphasis implementation"

    def after_transformers(self):
        # multiply each token's vector by its weight, then scale everything so the overall mean is unchanged;
        # the mean is over the whole batch of chunks passed in (all scheduled variants of one prompt)
        original_mean = self.z.mean()
        self.z = self.z * self.multipliers.reshape(self.multipliers.shape + (1,)).expand(self.z.shape)
        new_mean = self.z.mean()
        if new_mean != 0:  # a zero mean has nothing to restore (and must not become NaN)
            self.z = self.z * (original_mean / new_mean)


class EmphasisOriginalNoNorm(EmphasisOriginal):
    name = "No norm"
    description = "same as original, but without normalization (seems to work better for SDXL)"

    def after_transformers(self):
        self.z = self.z * self.multipliers.reshape(self.multipliers.shape + (1,)).expand(self.z.shape)


options = [
    EmphasisNone,
    EmphasisIgnore,
    EmphasisOriginal,
    EmphasisOriginalNoNorm,
]


def get_current_option(emphasis_option_name):
    """The Emphasis class for a setting value; unknown names fall back to Original."""
    return next(iter([x for x in options if x.name == emphasis_option_name]), EmphasisOriginal)


def get_options_descriptions():
    return ", ".join(f"{x.name}: {x.description}" for x in options)
