"""Conditioning as the sampler sees it, on a tiny checkpoint through process_images: which prompt text each
denoiser call gets, AND sub-prompts in one UNet call, the cond cache, TI hashes in the saved infotext."""
import pytest
import torch

from modules import processing, sd_samplers_cfg_denoiser, shared


def run(model, **kwargs):
    params = dict(sd_model=model, prompt="a red circle", negative_prompt="", steps=3, cfg_scale=7, width=64,
                  height=64, seed=1, sampler_name="Euler", do_not_save_samples=True, do_not_save_grid=True)
    params.update(kwargs)
    return processing.process_images(processing.StableDiffusionProcessingTxt2Img(**params))


@pytest.fixture
def unet_calls(tiny_model):
    """Every UNet call's cross-attention context, in order."""
    calls = []

    def hook(module, args, kwargs):
        context = kwargs.get("context", args[2] if len(args) > 2 else None)
        calls.append(context.detach().clone())

    handle = tiny_model.model.diffusion_model.register_forward_pre_hook(hook, with_kwargs=True)
    yield calls
    handle.remove()


def encode(model, text):
    with torch.no_grad():
        return model.get_learned_conditioning([text])[0]


def which(context_row, candidates):
    matches = [name for name, cond in candidates.items() if torch.allclose(context_row, cond, atol=1e-5)]
    assert len(matches) == 1, matches
    return matches[0]


def test_prompt_editing_switches_at_the_right_denoiser_call(tiny_model, unet_calls):
    run(tiny_model, prompt="[cat:dog:2]", steps=5, sampler_name="Euler")
    conds = {"cat": encode(tiny_model, "cat"), "dog": encode(tiny_model, "dog"), "uncond": encode(tiny_model, "")}
    # one UNet call per denoiser call: rows [cond, uncond]; calls 0..2 use "before" (counter from 0, "<=")
    assert len(unet_calls) == 5
    assert [which(c[0], conds) for c in unet_calls] == ["cat", "cat", "cat", "dog", "dog"]
    assert all(which(c[1], conds) == "uncond" for c in unet_calls)


def test_second_order_sampler_counts_denoiser_calls(tiny_model, unet_calls):
    # Heun calls the denoiser twice per step except the last: 3 steps -> 5 calls; its schedule spans 6
    conds = {"cat": encode(tiny_model, "cat"), "dog": encode(tiny_model, "dog")}
    run(tiny_model, prompt="[cat:dog:2]", steps=3, sampler_name="Heun")
    assert [which(c[0], conds) for c in unet_calls] == ["cat", "cat", "cat", "dog", "dog"]
    unet_calls.clear()
    run(tiny_model, prompt="[cat:dog:0.5]", steps=3, sampler_name="Heun")   # when = int(0.5 * 6) = 3
    assert [which(c[0], conds) for c in unet_calls] == ["cat", "cat", "cat", "cat", "dog"]


def test_alternation_in_sampling(tiny_model, unet_calls):
    conds = {"cat": encode(tiny_model, "cat"), "dog": encode(tiny_model, "dog")}
    run(tiny_model, prompt="[cat|dog]", steps=4)
    assert [which(c[0], conds) for c in unet_calls] == ["cat", "cat", "dog", "cat"]


def test_and_sub_prompts_share_one_unet_call(tiny_model, unet_calls):
    run(tiny_model, prompt="a cat AND a dog:0.5", negative_prompt="blur", steps=2, batch_size=2)
    conds = {"cat": encode(tiny_model, "a cat"), "dog": encode(tiny_model, " a dog"), "blur": encode(tiny_model, "blur")}
    assert len(unet_calls) == 2   # one per denoiser call, not one per sub-prompt
    # rows: image 0's sub-prompts, image 1's sub-prompts, then the two unconds
    assert [which(row, conds) for row in unet_calls[0]] == ["cat", "dog", "cat", "dog", "blur", "blur"]


def test_and_weights_combine_as_composable_diffusion():
    denoiser = sd_samplers_cfg_denoiser.CFGDenoiser(sampler=None)
    c1, c2, c3, u0, u1 = (torch.full((1, 2, 2), v) for v in (1.0, 5.0, -2.0, 0.5, 3.0))
    x_out = torch.cat([c1, c2, c3, u0, u1])
    uncond = torch.zeros(2, 77, 8)
    conds_list = [[(0, 1.0), (1, 0.5)], [(2, -0.7)]]
    out = denoiser.combine_denoised(x_out, conds_list, uncond, 7.0)
    # uncond + cfg * sum w_i (cond_i - uncond)
    assert torch.allclose(out[0], (u0 + 7.0 * (1.0 * (c1 - u0) + 0.5 * (c2 - u0)))[0])
    assert torch.allclose(out[1], (u1 + 7.0 * (-0.7 * (c3 - u1)))[0])


def test_cond_cache_encodes_each_prompt_once_across_batches_and_runs(tiny_model, monkeypatch):
    processing.clear_cond_cache()
    encoder = tiny_model.cond_stage_model
    texts_encoded = []
    original = encoder.process_texts

    def counting(texts):
        texts_encoded.extend(texts)
        return original(texts)

    monkeypatch.setattr(encoder, "process_texts", counting)
    prompt, negative = "a cached green square", "cached blur"
    run(tiny_model, prompt=prompt, negative_prompt=negative, steps=2, batch_size=2, n_iter=2)
    assert sorted(texts_encoded) == sorted([prompt, negative])
    run(tiny_model, prompt=prompt, negative_prompt=negative, steps=2, batch_size=2, seed=5)
    assert sorted(texts_encoded) == sorted([prompt, negative])   # the second run hits the cache
    shared.opts.data["CLIP_stop_at_last_layers"] = 2
    try:
        run(tiny_model, prompt=prompt, negative_prompt=negative, steps=2, batch_size=2)
    finally:
        shared.opts.data["CLIP_stop_at_last_layers"] = 1
    assert len(texts_encoded) == 4   # a setting that changes the encoding re-encodes


def test_ti_hashes_and_emphasis_reach_the_infotext(tiny_model, tmp_path, monkeypatch):
    from modules import hashes, sd_hijack
    folder = tmp_path / "embeddings"
    folder.mkdir()
    width = encode(tiny_model, "").shape[-1]
    torch.save({"string_to_param": {"*": torch.randn(2, width)}, "step": 10}, folder / "shinystyle.pt")
    db = sd_hijack.model_hijack.embedding_db
    saved_dirs = dict(db.embedding_dirs)
    db.clear_embedding_dirs()
    db.add_embedding_dir(str(folder))
    try:
        db.load_textual_inversion_embeddings(force_reload=True)
        processing.clear_cond_cache()
        res = run(tiny_model, prompt="a shinystyle cat", steps=1)
        expected = hashes.calculate_sha256(str(folder / "shinystyle.pt"))[:12]
        assert f"TI hashes: \"shinystyle: {expected}\"" in res.infotexts[0]
        processing.clear_cond_cache()
        shared.opts.data["emphasis"] = "No norm"
        try:
            res = run(tiny_model, prompt="a (cat:1.3)", steps=1)
        finally:
            shared.opts.data["emphasis"] = "Original"
        assert "Emphasis: No norm" in res.infotexts[0]
    finally:
        db.clear_embedding_dirs()
        db.embedding_dirs.update(saved_dirs)
        db.load_textual_inversion_embeddings(force_reload=True)
        processing.clear_cond_cache()



def test_prompt_and_negative_of_different_lengths(tiny_model, unet_calls):
    long_prompt = " ".join(["cat"] * 80)   # 2 chunks against a 1-chunk negative prompt
    run(tiny_model, prompt=long_prompt, negative_prompt="blur", steps=2)
    # default: cond and uncond in separate UNet calls, each at its own length
    assert [tuple(c.shape[:2]) for c in unet_calls] == [(1, 154), (1, 77)] * 2
    unet_calls.clear()
    shared.opts.data["pad_cond_uncond"] = True
    try:
        res = run(tiny_model, prompt=long_prompt, negative_prompt="blur", steps=2)
    finally:
        shared.opts.data["pad_cond_uncond"] = False
    # "Pad conds": the negative prompt is padded with empty-prompt chunks, and both go in one call
    assert [tuple(c.shape[:2]) for c in unet_calls] == [(2, 154)] * 2
    assert "Pad conds: True" in res.infotexts[0]


def test_an_sdxl_job_at_another_size_or_crop_is_conditioned_on_it(family_checkpoints, monkeypatch):
    """SDXL's conditioning holds the image size and the crop: the cond cache does not hand a 96x64 job the vector of
    an earlier 64x64 job with the same prompt, nor keep the old crop after the setting changes."""
    from modules import sd_models
    model = sd_models.load_model(sd_models.CheckpointInfo(family_checkpoints("sdxl")))
    vectors = []
    model.model.diffusion_model.register_forward_pre_hook(lambda m, args, kwargs: vectors.append(kwargs["y"].clone()),
                                                          with_kwargs=True)

    def vector(**kwargs):
        run(model, steps=1, **kwargs)
        return vectors[-1]
    try:
        processing.clear_cond_cache()
        small, wide = vector(width=64, height=64), vector(width=96, height=64)
        monkeypatch.setitem(shared.opts.data, "sdxl_crop_top", 16)
        cropped = vector(width=96, height=64)
        processing.clear_cond_cache()
        fresh = vector(width=96, height=64)
        monkeypatch.setitem(shared.opts.data, "sdxl_crop_top", 0)
        processing.clear_cond_cache()
        fresh_uncropped = vector(width=96, height=64)
    finally:
        sd_models.unload_model_weights()
    assert torch.equal(cropped, fresh) and torch.equal(wide, fresh_uncropped)
    assert not torch.equal(small, wide) and not torch.equal(wide, cropped)


def test_the_same_checkpoint_loaded_again_encodes_the_prompt_again(tiny_model, tiny_checkpoint_path, monkeypatch):
    # another load (in another precision, say) is another model: its prompts are encoded by it, not taken from the
    # cache of the model it replaced, even when Python gives the new model the old one's id
    from modules import sd_models
    monkeypatch.setattr(processing, "id", lambda obj: 1, raising=False)  # as if the new model got the old one's id
    processing.clear_cond_cache()
    run(tiny_model, prompt="a cached red circle", steps=1)
    reloaded = sd_models.load_model(sd_models.CheckpointInfo(tiny_checkpoint_path))
    texts_encoded = []
    original = reloaded.cond_stage_model.process_texts
    monkeypatch.setattr(reloaded.cond_stage_model, "process_texts", lambda texts: texts_encoded.extend(texts) or original(texts))
    run(reloaded, prompt="a cached red circle", steps=1)
    assert "a cached red circle" in texts_encoded
