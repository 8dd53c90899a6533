"""A result's gallery: the image the user picks decides what ♻️ reuses and which infotext is shown (A1111)."""
import json

import gradio as gr

from webui.generation_controls import reused_seed
from webui.output_panel import selected_infotext_html

# A batch of two with its grid first, as a job's generation info describes it.
INFO = json.dumps({"index_of_first_image": 1, "all_seeds": [100, 101], "all_subseeds": [7, 8], "subseed_strength": 0.5,
                   "infotexts": ["grid, Seed: 100", "a cat, Seed: 100", "a cat, Seed: 101"]})


def test_reuse_seed_takes_the_selected_images_seed():
    assert reused_seed(INFO, 2, "seed") == 101
    assert reused_seed(INFO, 1, "seed") == 100
    assert reused_seed(INFO, 0, "seed") == 100      # the grid: the first image's
    assert reused_seed(INFO, None, "seed") == 100   # nothing picked yet
    assert reused_seed(INFO, 2, "subseed") == 8
    assert reused_seed("", None, "seed") == -1      # no result yet


def test_reuse_variation_seed_gives_random_when_the_job_used_none():
    info = json.loads(INFO)
    info["subseed_strength"] = 0
    assert reused_seed(json.dumps(info), 2, "subseed") == -1


def test_the_selected_images_infotext_is_shown():
    assert "Seed: 101" in selected_infotext_html(INFO, 2)
    assert "grid" in selected_infotext_html(INFO, 0)
    assert selected_infotext_html(INFO, 5) == gr.skip()
    assert selected_infotext_html("", 1) == gr.skip()
