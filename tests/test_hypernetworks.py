"""Hypernetworks: A1111 .pt files in --hypernetwork-dir applied with <hypernet:NAME:M>."""
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from modules import processing, shared


def mlp_state_dict(dim, generator, old_names=False):
    """The [1, 2, 1] relu MLP of an A1111 hypernetwork for context width `dim` (keys linear.0/linear.2)."""
    sd = OrderedDict()
    sd["linear.0.weight"] = torch.randn(dim * 2, dim, generator=generator) * 0.3
    sd["linear.0.bias"] = torch.randn(dim * 2, generator=generator) * 0.1
    sd["linear.2.weight"] = torch.randn(dim, dim * 2, generator=generator) * 0.3
    sd["linear.2.bias"] = torch.randn(dim, generator=generator) * 0.1
    if old_names:  # NovelAI's first files: linear1/linear2 and no activation
        sd = OrderedDict([("linear1.weight", sd["linear.0.weight"]), ("linear1.bias", sd["linear.0.bias"]),
                          ("linear2.weight", sd["linear.2.weight"]), ("linear2.bias", sd["linear.2.bias"])])
    return sd


def write_hypernetwork(path, widths=(32, 64), seed=0, old_names=False):
    generator = torch.Generator().manual_seed(seed)
    data = {w: (mlp_state_dict(w, generator, old_names), mlp_state_dict(w, generator, old_names)) for w in widths}
    if old_names:
        data.update({"layer_structure": [1, 2, 1], "activation_func": None, "activate_output": False})
    else:
        data.update({"layer_structure": [1, 2, 1], "activation_func": "relu", "is_layer_norm": False,
                     "weight_initialization": "Normal", "use_dropout": False, "activate_output": False,
                     "last_layer_dropout": False, "step": 1000, "sd_checkpoint": "abcdef12", "sd_checkpoint_name": "tiny"})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(data, str(path))
    return data


@pytest.fixture
def hypernet_dir(tmp_path, monkeypatch, tiny_model):
    from modules import extra_networks
    from modules.hypernetworks import hypernetwork
    monkeypatch.setattr(shared.cmd_opts, "hypernetwork_dir", str(tmp_path))
    extra_networks.initialize()
    extra_networks.register_default_extra_networks()
    yield tmp_path
    hypernetwork.load_hypernetworks([])
    monkeypatch.undo()
    shared.reload_hypernetworks()


def run(prompt):
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=shared.sd_model, prompt=prompt, negative_prompt="", steps=2, cfg_scale=5, width=64, height=64,
        seed=5, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    return processing.process_images(p)


def pixels(res):
    return np.asarray(res.images[0], dtype=np.int16)


def test_hypernetwork_changes_the_image_and_removing_it_restores_it(hypernet_dir):
    from ldm.modules.attention import CrossAttention
    write_hypernetwork(hypernet_dir / "sub" / "anime.pt")
    original = pixels(run("a cat"))
    assert np.array_equal(pixels(run("a cat <hypernet:anime:0>")), original)
    changed = run("a cat <hypernet:anime:0.8>")
    assert np.abs(pixels(changed) - original).max() > 10
    assert "<hypernet:anime:0.8>" in changed.infotexts[0]
    assert np.array_equal(pixels(run("a cat")), original)
    attention = [m for m in shared.sd_model.model.diffusion_model.modules() if isinstance(m, CrossAttention)]
    assert attention and all(not m.to_k._forward_pre_hooks for m in attention)  # nothing left behind


def test_keys_and_values_see_the_context_through_the_mlps(hypernet_dir):
    """What an attention layer's to_k/to_v receive is A1111's context + mlp(context) × multiplier, per width."""
    from ldm.modules.attention import CrossAttention
    from modules.hypernetworks import hypernetwork
    data = write_hypernetwork(hypernet_dir / "h.pt", widths=(32,))
    shared.reload_hypernetworks()
    hypernetwork.load_hypernetworks(["h"], [0.6])
    attention = next(m for m in shared.sd_model.model.diffusion_model.modules() if isinstance(m, CrossAttention) and m.to_k.in_features == 32)
    seen = {}
    handles = [attention.to_k.register_forward_pre_hook(lambda m, a: seen.__setitem__("k", a[0])),
               attention.to_v.register_forward_pre_hook(lambda m, a: seen.__setitem__("v", a[0]))]
    context = torch.randn(2, 7, 32)
    x = torch.randn(2, 5, attention.to_q.in_features)
    try:
        with torch.no_grad():
            attention(x, context=context)
    finally:
        for handle in handles:
            handle.remove()

    def mlp(sd, c):
        h = torch.relu(c @ sd["linear.0.weight"].T + sd["linear.0.bias"])
        return h @ sd["linear.2.weight"].T + sd["linear.2.bias"]

    torch.testing.assert_close(seen["k"], context + 0.6 * mlp(data[32][0], context))
    torch.testing.assert_close(seen["v"], context + 0.6 * mlp(data[32][1], context))
    k, v = hypernetwork.apply_hypernetworks(shared.loaded_hypernetworks, context)
    torch.testing.assert_close(k, seen["k"])
    torch.testing.assert_close(v, seen["v"])


def test_old_novelai_layout_loads(hypernet_dir):
    from modules.hypernetworks import hypernetwork
    data = write_hypernetwork(hypernet_dir / "old.pt", widths=(64,), old_names=True)
    shared.reload_hypernetworks()
    net = hypernetwork.load_hypernetwork("old")
    k_module = net.layers[64][0]
    assert torch.equal(k_module.linear[0].weight, data[64][0]["linear1.weight"])
    assert torch.equal(k_module.linear[1].weight, data[64][0]["linear2.weight"])


def test_missing_and_malicious_hypernetworks_are_reported_and_the_image_made(hypernet_dir):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    with open(hypernet_dir / "evil.pt", "wb") as f:
        pickle.dump({320: Evil()}, f)
    res = run("a cat <hypernet:evil:1> <hypernet:nothere:1>")
    assert "Hypernetwork not found: nothere" in res.comments
    assert "Hypernetwork could not be loaded: evil" in res.comments and "refused" in res.comments
    assert len(res.images) == 1
