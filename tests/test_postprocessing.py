"""Extras: the Upscale postprocessing script over single images, uploads and folders, saved with infotext."""
import importlib.util
import os
import shutil

import numpy as np
import pytest
import safetensors.torch
from PIL import Image, PngImagePlugin

from modules import modelloader, postprocessing, scripts, scripts_postprocessing, shared
from tests.upscaler_factory import make_compact_state_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_upscale_script():
    path = os.path.join(ROOT, "scripts", "postprocessing_upscale.py")
    spec = importlib.util.spec_from_file_location("postprocessing_upscale_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


@pytest.fixture(autouse=True)
def runner(tmp_path):
    module, path = _load_upscale_script()
    data = scripts.ScriptClassData(module.ScriptPostprocessingUpscale, path, ROOT, module)
    runner = scripts_postprocessing.ScriptPostprocessingRunner()
    runner.initialize_scripts([data])
    saved_runner = getattr(scripts, "scripts_postproc", None)
    saved_outdir = shared.opts.outdir_extras_samples
    scripts.scripts_postproc = runner
    shared.opts.outdir_extras_samples = str(tmp_path / "extras-out")
    modelloader.load_upscalers()
    yield runner
    scripts.scripts_postproc = saved_runner
    shared.opts.outdir_extras_samples = saved_outdir


def upscale_args(**kw):
    args = {"upscale_enabled": True, "upscale_mode": 0, "upscale_by": 2, "max_side_length": 0, "upscale_to_width": 64,
            "upscale_to_height": 64, "upscale_crop": True, "upscaler_1_name": "Lanczos", "upscaler_2_name": "None",
            "upscaler_2_visibility": 0}
    args.update(kw)
    return {"Upscale": args}


def source(w=30, h=20, infotext="a cat\nSteps: 20, Sampler: Euler, Seed: 5"):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    if infotext:
        img.info["parameters"] = infotext
    return img


def saved_files():
    folder = shared.opts.outdir_extras_samples
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_scale_by_saves_with_infotext_kept():
    outputs, html, _ = postprocessing.run_postprocessing(0, source(), None, "", "", True, upscale_args())
    assert [im.size for im in outputs] == [(56, 40)]  # int(30*2)//8*8, int(20*2)//8*8
    assert saved_files() == ["00000.png"]
    with Image.open(os.path.join(shared.opts.outdir_extras_samples, "00000.png")) as im:
        assert im.info["parameters"] == "a cat\nSteps: 20, Sampler: Euler, Seed: 5"
        assert im.info["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: Lanczos"
    assert "Postprocess upscaler: Lanczos" in html


@pytest.mark.parametrize("kw,size", [
    ({"upscale_mode": 1, "upscale_to_width": 64, "upscale_to_height": 64, "upscale_crop": True}, (64, 64)),
    ({"upscale_mode": 1, "upscale_to_width": 64, "upscale_to_height": 64, "upscale_crop": False}, (96, 64)),
    ({"upscale_mode": 1, "upscale_to_width": 100, "upscale_to_height": 100, "upscale_crop": True}, (100, 100)),
    ({"upscale_mode": 0, "upscale_by": 4, "max_side_length": 100}, (96, 64)),
    ({"upscale_mode": 0, "upscale_by": 2.5}, (72, 48)),
])
def test_output_sizes(kw, size):
    outputs, _, _ = postprocessing.run_postprocessing(0, source(), None, "", "", True, upscale_args(**kw), save_output=False)
    assert outputs[0].size == size
    assert saved_files() == []


def test_crop_to_fit_has_no_black_border():
    outputs, _, _ = postprocessing.run_postprocessing(0, Image.new("RGB", (30, 30), (200, 200, 200)), None, "", "", True,
                                                      upscale_args(upscale_mode=1, upscale_to_width=100, upscale_to_height=100),
                                                      save_output=False)
    arr = np.asarray(outputs[0])
    assert arr.min() > 150


def test_upscaler_2_blend_and_unknown_upscaler():
    outputs, html, _ = postprocessing.run_postprocessing(0, source(), None, "", "", True,
                                                         upscale_args(upscaler_2_name="Nearest", upscaler_2_visibility=0.5), save_output=False)
    assert "Postprocess upscaler 2: Nearest" in html
    with pytest.raises(ValueError, match="could not find upscaler named Nope"):
        postprocessing.run_postprocessing(0, source(), None, "", "", True, upscale_args(upscaler_1_name="Nope"), save_output=False)


def test_upscaler_1_none_leaves_the_image():
    outputs, _, _ = postprocessing.run_postprocessing(0, source(), None, "", "", True, upscale_args(upscaler_1_name="None"), save_output=False)
    assert outputs[0].size == (30, 20)


def test_batch_of_uploads_keeps_original_names(tmp_path):
    paths = []
    for name in ("first.png", "second.png"):
        p = tmp_path / name
        source().save(p)
        paths.append(str(p))
    outputs, _, _ = postprocessing.run_postprocessing(1, None, paths, "", "", True, upscale_args())
    assert len(outputs) == 2
    assert saved_files() == ["first.png", "second.png"]


def test_batch_from_directory_skips_non_images(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "kept\nSteps: 1, Sampler: Euler, Seed: 1")
    source(infotext=None).save(inp / "a.png", pnginfo=info)
    (inp / "notes.txt").write_text("hello")
    outputs, _, _ = postprocessing.run_postprocessing(2, None, None, str(inp), str(out), False, upscale_args())
    assert outputs == []  # "Show result images" off
    assert sorted(os.listdir(out)) == ["a.png"]
    with Image.open(out / "a.png") as im:
        assert im.info["parameters"].startswith("kept")
    with pytest.raises(ValueError, match="does not exist"):
        postprocessing.run_postprocessing(2, None, None, str(tmp_path / "missing"), "", True, upscale_args())


def test_no_image_is_a_clear_error():
    with pytest.raises(ValueError, match="Image not selected"):
        postprocessing.run_postprocessing(0, None, None, "", "", True, upscale_args())


def test_model_upscaler_through_extras_and_old_run_extras_api():
    folder = shared.cmd_opts.esrgan_models_path
    os.makedirs(folder, exist_ok=True)
    safetensors.torch.save_file(make_compact_state_dict(), os.path.join(folder, "extras_tiny.safetensors"))
    try:
        modelloader.load_upscalers()
        outputs, html, _ = postprocessing.run_extras(0, 0, source(), None, "", "", True, 0, 0, 0, 4, 512, 512, True,
                                                     "extras_tiny", "None", 0, False, save_output=False)
        assert outputs[0].size == (120, 80)
        assert "Postprocess upscaler: extras_tiny" in html
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        modelloader.load_upscalers()


def test_sd_upscale_script_tiles_rediffuses_and_recombines(monkeypatch, tmp_path):
    """The SD upscale script with processing replaced by an identity 'diffusion': every tile goes through
    process_images once and the recombined image equals the upscaled input."""
    import types
    from modules import processing
    spec = importlib.util.spec_from_file_location("sd_upscale_under_test", os.path.join(ROOT, "scripts", "sd_upscale.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    calls = []

    def fake_process_images(p):
        calls.append(len(p.init_images))
        return types.SimpleNamespace(images=[im.copy() for im in p.init_images], info="tile info", seed=p.seed)

    monkeypatch.setattr(processing, "process_images", fake_process_images)
    monkeypatch.setattr(module, "Processed", lambda p, imgs, seed, info: types.SimpleNamespace(images=imgs, seed=seed, info=info))
    shared.opts.samples_save = False
    try:
        src = source(40, 30, infotext=None)
        p = types.SimpleNamespace(init_images=[src], width=32, height=32, seed=10, subseed=-1, batch_size=2, n_iter=1,
                                  extra_generation_params={}, prompt="p", outpath_samples=str(tmp_path))
        result = module.Script().run(p, None, 16, "Nearest", 2.0)
    finally:
        shared.opts.samples_save = True
    nearest = next(x for x in shared.sd_upscalers if x.name == "Nearest")
    expected = nearest.scaler.upscale(src, 2.0, None)  # int(40*2)//8*8 x int(30*2)//8*8
    assert result.images[0].size == (80, 56)
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(expected))
    assert sum(calls) == 12 and max(calls) <= 2  # 4x3 tiles of 32 px overlapping by >= 16, two per batch
    assert p.extra_generation_params == {"SD upscale overlap": 16, "SD upscale upscaler": "Nearest"}
    with pytest.raises(ValueError, match="no upscaler named 'Nope'"):
        module.resolve_upscaler("Nope")


def test_a_folder_with_files_that_are_not_images_says_which_were_skipped(tmp_path):
    # (they were skipped with a line in the console only: the user saw an empty result and no word why)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.png").write_text("hello")
    source().save(folder / "cat.png")
    outputs, html, _ = postprocessing.run_postprocessing(2, None, None, str(folder), str(tmp_path / "out"), True,
                                                         upscale_args(), save_output=False)
    assert len(outputs) == 1 and "Skipped notes.png: not an image" in html


def test_a_folder_without_images_says_nothing_was_processed(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    outputs, html, _ = postprocessing.run_postprocessing(2, None, None, str(tmp_path), "", True, upscale_args(), save_output=False)
    assert outputs == [] and "Skipped notes.txt" in html and f"input directory {tmp_path} holds no image" in html
    outputs, html, _ = postprocessing.run_postprocessing(1, None, [], "", "", True, upscale_args(), save_output=False)
    assert outputs == [] and "no image was given" in html
