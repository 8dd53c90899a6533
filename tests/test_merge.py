"""Checkpoint merger: formulas, A1111's key rules, metadata, file safety, command line."""
import errno
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from modules import merge, merge_methods, safetensors_stream
from modules.merge_plan import MergeError
from tests.shared_webui import DEMO, new_pngs, pngs_under, use_checkpoint
from tests.webui_server import chromium_available, launch_browser, pick_option, set_number

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
UNET_BIAS = "model.diffusion_model.out.2.bias"
VAE_KEY = "first_stage_model.decoder.conv_in.weight"
CLIP_KEY = "cond_stage_model.transformer.text_model.final_layer_norm.weight"
POS_IDS = "cond_stage_model.transformer.text_model.embeddings.position_ids"


def sd1_state_dict(seed, in_channels=4, dtype=torch.float32, extra=None):
    """A tiny state dict with SD1's key layout (a few tensors per part)."""
    g = torch.Generator().manual_seed(seed)
    sd = {
        UNET_IN: torch.randn(8, in_channels, 3, 3, generator=g),
        "model.diffusion_model.input_blocks.1.0.in_layers.2.weight": torch.randn(8, 8, 3, 3, generator=g),
        UNET_BIAS: torch.randn(4, generator=g),
        VAE_KEY: torch.randn(16, 4, 3, 3, generator=g),
        "first_stage_model.encoder.conv_in.bias": torch.randn(16, generator=g),
        CLIP_KEY: torch.randn(32, generator=g),
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": torch.randn(50, 32, generator=g),
        POS_IDS: torch.arange(77).unsqueeze(0),
        "alphas_cumprod": torch.rand(10, generator=g),
    }
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
    sd.update(extra or {})
    return sd


def write(tmp_path, name, sd, metadata=None):
    path = str(tmp_path / name)
    save_file(sd, path, metadata=metadata)
    return path


@pytest.fixture
def abc(tmp_path):
    sds = [sd1_state_dict(1), sd1_state_dict(2), sd1_state_dict(3)]
    paths = [write(tmp_path, f"{n}.safetensors", sd) for n, sd in zip("abc", sds)]
    return paths, sds


def run_merge(tmp_path, *models, out="out.safetensors", **kwargs):
    kwargs.setdefault("add_merge_recipe", False)
    result = merge.merge_checkpoints(*models, output_path=str(tmp_path / out), **kwargs)
    return result, load_file(result.filename) if result.filename.endswith(".safetensors") else None


MERGED_KEYS = [UNET_IN, UNET_BIAS, VAE_KEY, CLIP_KEY]


@pytest.mark.parametrize("method,weight", [
    ("weighted_sum", lambda m: m),
    ("sigmoid", lambda m: 3 * m ** 2 - 2 * m ** 3),
    ("inverse_sigmoid", lambda m: 0.5 - __import__("math").sin(__import__("math").asin(1 - 2 * m) / 3)),
])
def test_two_model_formulas_match_direct_computation(tmp_path, abc, method, weight):
    (a, b, _), (sa, sb, _) = abc
    _, out = run_merge(tmp_path, a, b, method=method, multiplier=0.3)
    w = weight(0.3)
    for key in MERGED_KEYS:
        torch.testing.assert_close(out[key], sa[key] + (sb[key] - sa[key]) * w)


def test_add_difference_matches_direct_computation(tmp_path, abc):
    (a, b, c), (sa, sb, sc) = abc
    _, out = run_merge(tmp_path, a, b, c, method="add_difference", multiplier=0.7)
    for key in MERGED_KEYS:
        torch.testing.assert_close(out[key], sa[key] + (sb[key] - sc[key]) * 0.7)


def test_sigmoid_weights_are_smoothstep_and_its_inverse():
    for m in (0.1, 0.3, 0.5, 0.8):
        assert merge_methods.smoothstep(m) == pytest.approx(3 * m * m - 2 * m ** 3)
        assert merge_methods.smoothstep(merge_methods.inverse_smoothstep(m)) == pytest.approx(m)


@pytest.mark.parametrize("method", ["weighted_sum", "sigmoid", "inverse_sigmoid"])
def test_multiplier_0_gives_a_and_1_gives_b_exactly(tmp_path, abc, method):
    (a, b, _), (sa, sb, _) = abc
    _, out0 = run_merge(tmp_path, a, b, method=method, multiplier=0.0, out="m0.safetensors")
    _, out1 = run_merge(tmp_path, a, b, method=method, multiplier=1.0, out="m1.safetensors")
    for key in MERGED_KEYS:
        assert torch.equal(out0[key], sa[key])
        assert torch.equal(out1[key], sb[key])


def test_add_difference_with_zero_multiplier_is_a(tmp_path, abc):
    (a, b, c), (sa, _, _) = abc
    _, out = run_merge(tmp_path, a, b, c, method="add_difference", multiplier=0.0)
    assert all(torch.equal(out[k], sa[k]) for k in sa)


def test_key_rules(tmp_path):
    sa = sd1_state_dict(1, extra={"model.diffusion_model.only_in_a.weight": torch.ones(3)})
    sb = sd1_state_dict(2, extra={"model.diffusion_model.only_in_b.weight": torch.ones(3)})
    _, out = run_merge(tmp_path, write(tmp_path, "a.safetensors", sa), write(tmp_path, "b.safetensors", sb), multiplier=0.5)
    assert "model.diffusion_model.only_in_b.weight" not in out          # keys only in B are dropped
    assert torch.equal(out["model.diffusion_model.only_in_a.weight"], sa["model.diffusion_model.only_in_a.weight"])
    assert torch.equal(out["alphas_cumprod"], sa["alphas_cumprod"])     # no 'model' in the name: A's
    assert torch.equal(out[POS_IDS], sa[POS_IDS])                       # never merged
    assert set(out) == set(sa)


def test_inpainting_a_with_normal_b_merges_first_four_channels(tmp_path):
    sa, sb = sd1_state_dict(1, in_channels=9), sd1_state_dict(2)
    a, b = write(tmp_path, "inp.safetensors", sa), write(tmp_path, "b.safetensors", sb)
    result = merge.merge_checkpoints(a, b, multiplier=0.5, output_dir=str(tmp_path), custom_name="mix", add_merge_recipe=False)
    assert result.is_inpainting and result.filename.endswith("mix.inpainting.safetensors")
    out = load_file(result.filename)
    torch.testing.assert_close(out[UNET_IN][:, :4], (sa[UNET_IN][:, :4] + sb[UNET_IN]) / 2)
    assert torch.equal(out[UNET_IN][:, 4:], sa[UNET_IN][:, 4:])


def test_a_custom_name_may_name_a_subfolder_but_never_a_place_outside_the_checkpoints_folder(tmp_path):
    a = write(tmp_path, "a.safetensors", sd1_state_dict(1))
    b = write(tmp_path, "b.safetensors", sd1_state_dict(2))
    folder = tmp_path / "Stable-diffusion"
    (folder / "merges").mkdir(parents=True)
    result = merge.merge_checkpoints(a, b, multiplier=0.5, output_dir=str(folder), custom_name="merges/mix", add_merge_recipe=False)
    assert result.filename == str(folder / "merges" / "mix.safetensors")
    for name in ("../evil", "/tmp/evil", "merges/../../evil"):
        with pytest.raises(MergeError, match="outside the checkpoints folder"):
            merge.merge_checkpoints(a, b, multiplier=0.5, output_dir=str(folder), custom_name=name, add_merge_recipe=False)
    assert not (tmp_path / "evil.safetensors").exists()


def test_normal_a_with_inpainting_b_is_refused_with_a1111_message(tmp_path):
    a = write(tmp_path, "a.safetensors", sd1_state_dict(1))
    b = write(tmp_path, "inp.safetensors", sd1_state_dict(2, in_channels=9))
    with pytest.raises(MergeError, match="When merging inpainting model with a normal one, A must be the inpainting model."):
        run_merge(tmp_path, a, b)
    assert not os.path.exists(tmp_path / "out.safetensors")


def test_fp16_halves_merged_float32_weights(tmp_path, abc):
    (a, b, _), _ = abc
    _, out = run_merge(tmp_path, a, b, save_as_half=True)
    assert out[UNET_IN].dtype == torch.float16 and out[VAE_KEY].dtype == torch.float16
    assert out["alphas_cumprod"].dtype == torch.float32   # A1111 halves only what it merged
    assert out[POS_IDS].dtype == torch.int64
    _, copied = run_merge(tmp_path, a, method="no_interpolation", save_as_half=True, out="copy.safetensors")
    assert copied["alphas_cumprod"].dtype == torch.float16 and copied[POS_IDS].dtype == torch.int64


def test_fp16_inputs_merge_in_float32_and_stay_fp16(tmp_path):
    sa, sb = sd1_state_dict(1, dtype=torch.float16), sd1_state_dict(2, dtype=torch.float16)
    _, out = run_merge(tmp_path, write(tmp_path, "a.safetensors", sa), write(tmp_path, "b.safetensors", sb), multiplier=0.25)
    assert out[UNET_IN].dtype == torch.float16
    expected = (sa[UNET_IN].float() * 0.75 + sb[UNET_IN].float() * 0.25).half()
    torch.testing.assert_close(out[UNET_IN], expected)  # computed in float32, rounded once


def test_bake_in_vae(tmp_path, abc):
    (a, b, _), _ = abc
    vae = {"decoder.conv_in.weight": torch.full((16, 4, 3, 3), 7.0), "encoder.conv_in.bias": torch.full((16,), 3.0),
           "loss.logvar": torch.zeros(1), "model_ema.decay": torch.tensor(0.99)}
    vae_path = write(tmp_path, "my.vae.safetensors", vae)
    _, out = run_merge(tmp_path, a, b, bake_in_vae=vae_path, save_as_half=True)
    assert torch.equal(out[VAE_KEY], vae["decoder.conv_in.weight"].half())
    assert torch.equal(out["first_stage_model.encoder.conv_in.bias"], vae["encoder.conv_in.bias"].half())
    assert not any(k.startswith("first_stage_model.loss") for k in out)


def test_vae_that_does_not_fit_is_refused(tmp_path, abc):
    (a, b, _), _ = abc
    vae_path = write(tmp_path, "bad.vae.safetensors", {"decoder.conv_in.weight": torch.zeros(2, 2)})
    with pytest.raises(MergeError, match="Bake in VAE.*does not fit"):
        run_merge(tmp_path, a, b, bake_in_vae=vae_path)


def test_discard_weights_regex(tmp_path, abc):
    (a, b, _), (sa, _, _) = abc
    _, out = run_merge(tmp_path, a, b, discard_weights=r"^first_stage_model\.")
    assert not any(k.startswith("first_stage_model.") for k in out)
    assert UNET_IN in out
    with pytest.raises(MergeError, match="not a valid regular expression"):
        run_merge(tmp_path, a, b, discard_weights="(", out="bad.safetensors")


def test_metadata_recipe_and_models_round_trip(tmp_path):
    a = write(tmp_path, "a.safetensors", sd1_state_dict(1), metadata={"author": "me"})
    b = write(tmp_path, "b.safetensors", sd1_state_dict(2))
    result = merge.merge_checkpoints(a, b, multiplier=0.4, output_path=str(tmp_path / "ab.safetensors"), metadata_json='{"note": "x"}')
    with safe_open(result.filename, "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt" and meta["author"] == "me" and meta["note"] == "x"
    recipe = json.loads(meta["sd_merge_recipe"])
    a_sha, b_sha = merge.InputModel(a, "a.safetensors", "a").sha256(), merge.InputModel(b, "b.safetensors", "b").sha256()
    assert recipe == {"type": "webui", "primary_model_hash": a_sha, "secondary_model_hash": b_sha, "tertiary_model_hash": None,
                      "interp_method": "Weighted sum", "multiplier": 0.4, "save_as_half": False, "custom_name": "",
                      "config_source": 0, "bake_in_vae": "None", "discard_weights": "", "is_inpainting": False,
                      "is_instruct_pix2pix": False}
    models = json.loads(meta["sd_merge_models"])
    assert models[a_sha]["name"] == "a.safetensors" and len(models[a_sha]["legacy_hash"]) == 8
    assert models[b_sha]["sd_merge_recipe"] is None
    # merging the merged model again keeps the history of its sources
    c = write(tmp_path, "c.safetensors", sd1_state_dict(3))
    again = merge.merge_checkpoints(result.filename, c, output_path=str(tmp_path / "abc.safetensors"))
    with safe_open(again.filename, "pt") as f:
        models2 = json.loads(f.metadata()["sd_merge_models"])
    assert a_sha in models2 and b_sha in models2
    ab_sha = merge.InputModel(result.filename, "ab.safetensors", "ab").sha256()
    assert models2[ab_sha]["sd_merge_recipe"]["interp_method"] == "Weighted sum"


def test_same_inputs_and_settings_give_identical_bytes(tmp_path, abc):
    (a, b, _), _ = abc
    r1 = merge.merge_checkpoints(a, b, multiplier=0.3, output_path=str(tmp_path / "one.safetensors"))
    r2 = merge.merge_checkpoints(a, b, multiplier=0.3, output_path=str(tmp_path / "two.safetensors"))
    assert open(r1.filename, "rb").read() == open(r2.filename, "rb").read()


def test_different_families_and_shapes_are_refused(tmp_path):
    a = write(tmp_path, "sd1.safetensors", sd1_state_dict(1))
    xl = write(tmp_path, "xl.safetensors", {UNET_IN: torch.zeros(8, 4, 3, 3), "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": torch.zeros(4)})
    with pytest.raises(MergeError, match="different model families: A is SD1.x, B is SDXL"):
        run_merge(tmp_path, a, xl)
    wide = write(tmp_path, "wide.safetensors", sd1_state_dict(2, extra={UNET_BIAS: torch.zeros(6)}))
    with pytest.raises(MergeError, match=r"Models A and B do not match: 1 weights have different shapes: model.diffusion_model.out.2.bias: A=\[4\] B=\[6\]"):
        run_merge(tmp_path, a, wide)
    assert sorted(os.listdir(tmp_path)) == ["sd1.safetensors", "wide.safetensors", "xl.safetensors"]


def test_missing_models_and_unreadable_inputs(tmp_path, abc):
    (a, b, _), _ = abc
    with pytest.raises(MergeError, match=r"Interpolation method \(Add difference\) requires a tertiary model"):
        run_merge(tmp_path, a, b, method="add_difference")
    with pytest.raises(MergeError, match="Merging requires a secondary model"):
        run_merge(tmp_path, a, None)
    with pytest.raises(MergeError, match="Secondary model .B.: checkpoint 'nope.safetensors' not found"):
        run_merge(tmp_path, a, "nope.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(MergeError, match=r"Cannot read secondary model \(B\) .*garbage.safetensors: not a safetensors file"):
        run_merge(tmp_path, a, str(garbage))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(open(b, "rb").read()[:-100])
    with pytest.raises(MergeError, match="truncated"):
        run_merge(tmp_path, a, str(truncated))


def test_existing_output_is_refused_unless_overwrite(tmp_path, abc):
    (a, b, _), _ = abc
    target = tmp_path / "out.safetensors"
    target.write_bytes(b"precious")
    with pytest.raises(MergeError, match="already exists"):
        run_merge(tmp_path, a, b)
    assert target.read_bytes() == b"precious"
    run_merge(tmp_path, a, b, overwrite=True)
    assert load_file(str(target))


def test_full_disk_leaves_no_file_behind(tmp_path, abc, monkeypatch):
    (a, b, _), _ = abc
    real_write = safetensors_stream.SafetensorsWriter.write
    calls = {"n": 0}

    def failing_write(self, key, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, key, data)

    monkeypatch.setattr(safetensors_stream.SafetensorsWriter, "write", failing_write)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(MergeError, match="Disk full while writing .*out.safetensors; the partial file was removed"):
        run_merge(tmp_path, a, b)
    assert sorted(os.listdir(tmp_path)) == before


def test_interrupted_merge_leaves_no_file(tmp_path, abc):
    (a, b, _), _ = abc
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(merge.MergeInterrupted):
        run_merge(tmp_path, a, b, should_stop=lambda: True)
    assert sorted(os.listdir(tmp_path)) == before


def test_ckpt_output_and_ckpt_input(tmp_path, abc):
    (a, b, _), (sa, sb, _) = abc
    result, _ = run_merge(tmp_path, a, b, out="out.ckpt", multiplier=0.5)
    ckpt = torch.load(result.filename, map_location="cpu", weights_only=True)
    torch.testing.assert_close(ckpt[UNET_IN], (sa[UNET_IN] + sb[UNET_IN]) / 2)
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []
    # a .ckpt wrapped in "state_dict", with old CLIP key names, merges like its safetensors twin
    old = {k.replace("transformer.text_model.", "transformer."): v for k, v in sb.items()}
    b_ckpt = str(tmp_path / "b.ckpt")
    torch.save({"state_dict": old, "global_step": 5}, b_ckpt)
    _, from_ckpt = run_merge(tmp_path, a, b_ckpt, multiplier=0.5, out="viackpt.safetensors")
    _, from_st = run_merge(tmp_path, a, b, multiplier=0.5, out="viast.safetensors")
    assert from_ckpt.keys() == from_st.keys() and all(torch.equal(from_ckpt[k], from_st[k]) for k in from_st)


def test_generated_names_follow_a1111(tmp_path, abc):
    (a, b, c), _ = abc
    r = merge.merge_checkpoints(a, b, multiplier=0.3, output_dir=str(tmp_path), add_merge_recipe=False)
    assert os.path.basename(r.filename) == "0.7(a) + 0.3(b).safetensors"
    r = merge.merge_checkpoints(a, b, c, method="Add difference", multiplier=0.5, output_dir=str(tmp_path), add_merge_recipe=False)
    assert os.path.basename(r.filename) == "a + 0.5(b - c).safetensors"


def test_stream_writer_output_reads_with_the_safetensors_library(tmp_path):
    tensors = {"odd": torch.arange(3, dtype=torch.float16), "bf": torch.randn(5).bfloat16(), "f": torch.randn(2, 3),
               "i": torch.arange(4), "flag": torch.tensor([True, False]), "empty": torch.zeros(0, 4)}
    path = str(tmp_path / "s.safetensors")
    safetensors_stream.save_file_streamed(tensors, path, metadata={"k": "v"})
    back = load_file(path)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)
    with safetensors_stream.SafetensorsReader(path) as r:
        assert r.metadata == {"k": "v"} and all(torch.equal(r.get_tensor(k), tensors[k]) for k in tensors)


def test_run_modelmerger_a1111_signature(tmp_path, abc, monkeypatch):
    from modules import extras, shared
    (a, b, _), (sa, sb, _) = abc
    monkeypatch.setattr(shared.cmd_opts, "ckpt_dir", str(tmp_path))
    *updates, message = extras.run_modelmerger(None, a, b, "", "Weighted sum", 0.5, False, "merged", "safetensors",
                                                0, "None", "", True, True, True, "{}")
    assert message == "Checkpoint saved to " + str(tmp_path / "merged.safetensors")
    assert len(updates) == 4 and all(u["__type__"] == "update" for u in updates)
    out = load_file(str(tmp_path / "merged.safetensors"))
    torch.testing.assert_close(out[UNET_IN], (sa[UNET_IN] + sb[UNET_IN]) / 2)
    *_, message = extras.run_modelmerger(None, a, "", "", "Weighted sum", 0.5, False, "", "safetensors", 0, "None", "", True, True, True, "{}")
    assert message == "Failed: Merging requires a secondary model."
    assert shared.state.job == ""


def test_command_line(tmp_path, abc, monkeypatch, capsys):
    (a, b, _), (sa, sb, _) = abc
    out = str(tmp_path / "cli.safetensors")
    cmd = [sys.executable, "-m", "modules.merge", a, b, "--method", "sigmoid", "--multiplier", "0.5", "--out", out, "--fp16"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == out and "100%" in proc.stderr
    merged = load_file(out)
    assert merged[UNET_IN].dtype == torch.float16
    torch.testing.assert_close(merged[UNET_IN], ((sa[UNET_IN] + sb[UNET_IN]) / 2).half())
    # errors: in-process through the same entry point (a subprocess costs seconds of torch import)
    monkeypatch.setattr(sys, "argv", ["merge"])
    assert merge.main(cmd[3:]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "already exists" in err and "Traceback" not in err
    assert merge.main(cmd[3:5] + ["--method", "add_difference", "--out", str(tmp_path / "x.safetensors")]) == 1
    assert "requires a tertiary model" in capsys.readouterr().err


def test_bake_in_prefixed_vae_file(tmp_path, abc):
    (a, b, _), _ = abc
    vae_path = write(tmp_path, "prefixed.vae.safetensors", {"first_stage_model.decoder.conv_in.weight": torch.full((16, 4, 3, 3), 2.0)})
    _, out = run_merge(tmp_path, a, b, bake_in_vae=vae_path)
    assert torch.equal(out[VAE_KEY], torch.full((16, 4, 3, 3), 2.0))


def test_merged_tiny_checkpoint_loads_and_generates(tmp_path):
    factory = pytest.importorskip("tests.checkpoint_factory")
    sd_models = pytest.importorskip("modules.sd_models")
    processing = pytest.importorskip("modules.processing")
    a = factory.make_tiny_sd1_checkpoint(str(tmp_path / "a.safetensors"), seed=0)
    b = factory.make_tiny_sd1_checkpoint(str(tmp_path / "b.safetensors"), seed=1, dtype=torch.float16)
    result = merge.merge_checkpoints(a, b, method="sigmoid", multiplier=0.4, save_as_half=True,
                                     output_path=str(tmp_path / "merged.safetensors"))
    model = sd_models.load_model(sd_models.CheckpointInfo(result.filename))
    from modules import shared
    model = model if model is not None else shared.sd_model
    p = processing.StableDiffusionProcessingTxt2Img(sd_model=model, prompt="a red circle", steps=2, width=64, height=64,
                                                    seed=1, sampler_name="Euler", styles=[], do_not_save_samples=True, do_not_save_grid=True)
    try:
        res = processing.process_images(p)
    except ImportError as e:  # a piece of the generation pipeline that has not landed yet
        pytest.skip(f"generation pipeline incomplete: {e}")
    assert res.images[0].size == (64, 64)


def test_tab_merge_button_saves_and_announces_the_new_file(tmp_path, abc, monkeypatch):
    gr = pytest.importorskip("gradio")
    from modules import shared
    from webui import tab_checkpoint_merger as tab
    (a, b, _), _ = abc
    monkeypatch.setattr(shared.cmd_opts, "ckpt_dir", str(tmp_path))
    with gr.Blocks():
        parts = tab.create_tab(None)
    assert {"primary", "secondary", "tertiary", "merge_event", "merged_file"} <= set(parts)
    announced = []
    monkeypatch.setattr(tab, "_merged_listeners", [])
    tab.on_model_merged(announced.append)
    args = [a, b, "", "Inverse sigmoid", 0.5, False, "from-tab", "safetensors", 0, "None", "", True, True, True, "{}", False]
    *_, last = list(tab._merge_handler(*args))
    progress, result, *_, merged_file = last
    expected = str(tmp_path / "from-tab.safetensors")
    assert "Checkpoint saved to" in result and merged_file == expected and announced == [expected]
    *_, again = list(tab._merge_handler(*args))
    assert "already exists" in again[1] and "error" in again[1]


def test_tab_merge_refreshes_the_checkpoint_dropdown_above_the_tabs(tmp_path, monkeypatch):
    """After a merge the new file is offered in the quicksettings checkpoint dropdown (the tab wired no refresh:
    it looked for a ctx.refresh_checkpoints the page never had)."""
    gr = pytest.importorskip("gradio")
    from modules import shared
    from webui import quicksettings, tab_checkpoint_merger as tab
    from webui.ui import UiContext
    monkeypatch.setattr(shared.cmd_opts, "ckpt_dir", str(tmp_path))
    ctx = UiContext()
    with gr.Blocks() as demo:
        ctx.checkpoint_dropdown = gr.Dropdown(choices=[], elem_id="setting_sd_model_checkpoint")
        tab.create_tab(ctx)
    merge_fn = next(i for i, fn in demo.fns.items() if fn.fn is tab._merge_handler)
    refresh = [fn for fn in demo.fns.values() if fn.fn is quicksettings.refresh_checkpoints]
    assert len(refresh) == 1 and refresh[0].outputs == [ctx.checkpoint_dropdown]
    assert refresh[0].trigger_after == merge_fn
    assert ctx.tabs["modelmerger"]["merge_event"] is not None


def test_chunked_merge_with_mixed_dtypes_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    a, b, c = torch.randn(5, 7, generator=g).half(), torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g).bfloat16()
    out = torch.empty(5, 7)
    merge_methods.merge_into(out, "sigmoid", a, b, m=0.3, chunk=4)
    w = 3 * 0.09 - 2 * 0.027
    torch.testing.assert_close(out, a.float() + (b - a.float()) * w)
    merge_methods.merge_into(out, "add_difference", a, b, c, m=0.6, chunk=4)
    torch.testing.assert_close(out, a.float() + (b - c.float()) * 0.6)


def _merge_and_load_in_browser(page, primary, secondary, name):
    """Merger tab: A and B with the default weighted sum (M=0.3), Merge, then load the result from the dropdown."""
    page.get_by_role("tab", name="Checkpoint Merger").click()
    pick_option(page, "modelmerger_primary_model_name", primary)
    pick_option(page, "modelmerger_secondary_model_name", secondary)
    page.locator("#modelmerger_custom_name textarea, #modelmerger_custom_name input").first.fill(name)
    page.locator("#modelmerger_merge").click()
    page.locator("#modelmerger_result").get_by_text("Checkpoint saved to").wait_for(timeout=120000)
    use_checkpoint(page, name)


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")
def test_merge_two_checkpoints_in_the_browser(shared_webui):
    """The tab end to end: pick A and B, Merge, and the new file is saved and listed in the checkpoint dropdown."""
    from playwright.sync_api import sync_playwright
    models = os.path.join(shared_webui.data_dir, "models", "Stable-diffusion")
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(shared_webui.url)
        _merge_and_load_in_browser(page, "tiny-a", "tiny-b", "browser-merge")
        assert os.path.exists(os.path.join(models, "browser-merge.safetensors"))
        browser.close()
    merged = load_file(os.path.join(models, "browser-merge.safetensors"))
    a = load_file(os.path.join(models, "tiny-a.safetensors"))
    b = load_file(os.path.join(models, "tiny-b.safetensors"))
    key = next(k for k in a if k.startswith("model.diffusion_model.") and a[k].is_floating_point())
    torch.testing.assert_close(merged[key], a[key] * 0.7 + b[key] * 0.3)


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and playwright")
@pytest.mark.skipif(not os.path.isfile(DEMO), reason="needs the demo checkpoint")
def test_merge_two_demo_checkpoint_variants_in_the_browser(shared_webui):
    """Merge the demo model (A) with a variant whose "red" and "blue" are swapped (B) at M=0.3 through the tab,
    load the result and generate: it still draws a red circle, as 70% of A says."""
    from playwright.sync_api import sync_playwright

    from demo_model import judge
    models = os.path.join(shared_webui.data_dir, "models", "Stable-diffusion")
    outputs = os.path.join(shared_webui.data_dir, "outputs", "txt2img-images")
    before = pngs_under(outputs)
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(shared_webui.url)
        _merge_and_load_in_browser(page, "shapes-a", "shapes-b", "shapes-merged")

        page.get_by_role("tab", name="txt2img", exact=True).first.click()
        page.locator("#txt2img_prompt textarea").fill("a large red circle in the centre on a white background")
        pick_option(page, "txt2img_sampling", "Euler a")
        for elem_id, value in (("txt2img_width", 64), ("txt2img_height", 64), ("txt2img_steps", 20),
                               ("txt2img_seed", 3), ("txt2img_batch_size", 4)):
            set_number(page, elem_id, value)
        page.locator("#txt2img_generate").click()
        page.locator("#html_info_txt2img").get_by_text("Model: shapes-merged").wait_for(timeout=120000)
        browser.close()

    merged = load_file(os.path.join(models, "shapes-merged.safetensors"))
    a, b = load_file(os.path.join(models, "shapes-a.safetensors")), load_file(os.path.join(models, "shapes-b.safetensors"))
    key = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
    torch.testing.assert_close(merged[key].float(), a[key].float() * 0.7 + b[key].float() * 0.3, atol=2e-3, rtol=1e-2)
    from PIL import Image
    saved = new_pngs(outputs, before, "Model: shapes-merged")
    assert len(saved) == 4
    found = [judge.judge(Image.open(p).convert("RGB")).main for p in saved]
    assert sum(f is not None and f.colour == "red" and f.shape == "circle" for f in found) >= 3, found


def test_after_a_merge_the_chosen_models_stay_chosen_under_their_new_titles(tmp_path, abc, monkeypatch):
    """The merge hashes A and B, so they are listed as "a.safetensors [hash]" afterwards; their old titles stayed
    selected, outside the new choices, and Gradio refused the next Merge with a bare "Error"."""
    gr = pytest.importorskip("gradio")
    from modules import sd_models, shared
    from webui import tab_checkpoint_merger as tab
    monkeypatch.setattr(shared.cmd_opts, "ckpt_dir", str(tmp_path))
    monkeypatch.setattr(tab, "_merged_listeners", [])
    with gr.Blocks():
        tab.create_tab(None)
    titles = [next(t for t in sd_models.checkpoint_tiles() if t.startswith(f"{name}.safetensors")) for name in "ab"]
    args = [*titles, "", "Weighted sum", 0.5, False, "again", "safetensors", 0, "None", "", True, True, True, "{}", True]
    for _ in range(2):  # the second Merge is the one the stale titles broke
        *_, last = list(tab._merge_handler(*args))
        assert "Checkpoint saved to" in last[1]
        primary, secondary = last[2], last[3]
        for update, name in ((primary, "a"), (secondary, "b")):
            assert update["value"] in update["choices"] and update["value"].startswith(f"{name}.safetensors [")
        args[:2] = primary["value"], secondary["value"]
