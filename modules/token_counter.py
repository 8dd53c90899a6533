"""What the "N/75" counter beside a prompt box shows (A1111: ui.update_token_counter).

The prompt is taken as it will be encoded: styles added (setting `include_styles_into_token_counters`), comments
stripped, extra-network tags removed, split on AND (positive prompt only), and every prompt-editing variant for the
given steps counted; the longest one is shown, with its chunk capacity (75, 150, ...).
"""
from __future__ import annotations

from modules import errors, extra_networks, prompt_parser, shared


def count_tokens(text: str, steps: int = 20, styles=None, is_positive: bool = True) -> tuple[int, int]:
    """(token_count, max_length) for the counter; never raises for any prompt text."""
    text = text or ""
    styles = styles or []
    try:
        steps = max(1, int(steps or 1))
    except (TypeError, ValueError):
        steps = 20

    text, steps, styles = _run_before_token_counter(text, steps, styles, is_positive)

    if shared.opts.include_styles_into_token_counters and styles and shared.prompt_styles is not None:
        db = shared.prompt_styles
        text = db.apply_styles_to_prompt(text, styles) if is_positive else db.apply_negative_styles_to_prompt(text, styles)

    if shared.opts.enable_prompt_comments:
        from modules import prompt_comments
        text = prompt_comments.strip_comments(text)

    try:
        text, _ = extra_networks.parse_prompt(text)
        if is_positive:
            _, flat_prompts, _ = prompt_parser.get_multicond_prompt_list([text])
        else:
            flat_prompts = [text]
        schedules = prompt_parser.get_learned_conditioning_prompt_schedules(flat_prompts, steps)
    except Exception:
        schedules = [[[steps, text]]]

    variants = [variant_text for schedule in schedules for _, variant_text in schedule]

    from modules import sd_hijack
    return max((sd_hijack.model_hijack.get_prompt_lengths(variant) for variant in variants), key=lambda x: x[0])


get_token_count = count_tokens


def _run_before_token_counter(text, steps, styles, is_positive):
    """Extensions may rewrite what is counted (on_before_token_counter); a failing one is reported and skipped."""
    from modules import script_callbacks
    params = script_callbacks.BeforeTokenCounterParams(text, steps, styles, is_positive=is_positive)
    try:
        script_callbacks.before_token_counter_callback(params)
        return params.prompt, params.steps, params.styles
    except Exception:
        errors.report("Error running before_token_counter callbacks", exc_info=True)
        return text, steps, styles
