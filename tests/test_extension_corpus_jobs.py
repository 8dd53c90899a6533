"""The six real extensions of the corpus, unmodified, doing their job where a user would see it.

Each test copies one extension into a temporary extensions/ folder, loads it as the web UI does, builds the
generation tabs' script sections, then runs a real txt2img generation on the tiny checkpoint with the
extension's controls set as a user would, and measures the image or the infotext.
"""
import numpy as np
import pytest

from tests.extension_helpers import ExtensionSandbox, build_tabs, script_by_title, txt2img


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    box = ExtensionSandbox(tmp_path / "extensions", monkeypatch)
    yield box
    box.close()


def pixels(image):
    return np.asarray(image.convert("RGB")).astype(np.float64)


def edge_correlations(image):
    """(left edge vs right edge, top edge vs bottom edge, neighbouring columns): Pearson correlations of pixel rows.

    An image that wraps across an edge has edges that continue each other like any two neighbouring columns.
    """
    a = pixels(image)

    def corr(x, y):
        x = (x - x.mean(axis=0)).ravel()
        y = (y - y.mean(axis=0)).ravel()
        return float(x @ y / np.sqrt((x @ x) * (y @ y)))

    neighbours = np.mean([corr(a[:, i], a[:, i + 1]) for i in range(a.shape[1] - 1)])
    return corr(a[:, 0], a[:, -1]), corr(a[0], a[-1]), neighbours


def test_asymmetric_tiling_wraps_horizontally_only(sandbox, tiny_model):
    sandbox.add_corpus("asymmetric-tiling-sd-webui")
    reports = sandbox.load()
    build_tabs()
    for seed in (1, 2):
        plain = txt2img(tiny_model, seed=seed)
        # Controls: 0 Active, 1 Tile X (on by default), 2 Tile Y (off by default), 3 start step, 4 stop step
        tiled = txt2img(tiny_model, {("Asymmetric tiling", 0): True}, seed=seed)
        left_right, top_bottom, neighbours = edge_correlations(tiled.images[0])
        assert neighbours > 0.5  # the measure itself: neighbouring columns look alike
        assert left_right > 0.5, "the left and right edges should continue each other"
        assert top_bottom < 0.3, "the top and bottom edges should not"
        plain_left_right, plain_top_bottom, _ = edge_correlations(plain.images[0])
        assert plain_left_right < 0.3 and plain_top_bottom < 0.3
        assert "Tile X: True, Tile Y: False" in tiled.infotexts[0]
    # Its postprocess() restores every convolution: the next plain image is the same as before.
    assert np.array_equal(pixels(txt2img(tiny_model, seed=2).images[0]), pixels(plain.images[0]))
    assert reports.messages == []


def sd1_linear_decode(model):
    """A decoder with SD1's colour semantics: the linear latent->RGB map, each latent pixel an 8x8 block.

    The tiny checkpoint's VAE is random, so its colours mean nothing; vectorscope's channel arithmetic is designed
    against SD1's latent space, which this map (A1111's "Approx cheap" preview) describes.
    """
    import torch
    from modules import model_families
    factors = torch.tensor(model_families.SD1_LATENT.rgb_factors)

    def decode(z):
        rgb = torch.einsum("bchw,cr->brhw", z.float(), factors.to(z.device))
        return torch.nn.functional.interpolate(rgb, scale_factor=8, mode="nearest").to(z.dtype)
    return decode


def colour_summary(image):
    a = pixels(image)
    r, g, b = a[..., 0].mean(), a[..., 1].mean(), a[..., 2].mean()
    return {"brightness": (r + g + b) / 3, "redness": r - (g + b) / 2, "blueness": b - (r + g) / 2}


def test_vectorscope_cc_shifts_brightness_and_colour_in_the_direction_set(sandbox, tiny_model, monkeypatch):
    sandbox.add_corpus("sd-webui-vectorscope-cc")
    reports = sandbox.load()
    build_tabs()
    monkeypatch.setattr(tiny_model, "decode_first_stage", sd1_linear_decode(tiny_model))
    title = "Vectorscope CC"
    # Controls: 0 Enable, 1 Alt, 2 Brightness, 3 Contrast, 4 Saturation, 5 R, 6 G, 7 B, ...
    def run(**sliders):
        overrides = {(title, 0): True}
        for name, value in sliders.items():
            overrides[(title, {"bri": 2, "r": 5, "b": 7}[name])] = value
        # Its default noise setting edits the x0 prediction the sampler is about to step with (A1111: k-diffusion
        # Euler a reads it after the step callback).
        return txt2img(tiny_model, overrides, steps=4, sampler_name="Euler a")

    base = colour_summary(run().images[0])
    brighter = colour_summary(run(bri=3.0).images[0])
    darker = colour_summary(run(bri=-3.0).images[0])
    redder = colour_summary(run(r=3.0).images[0])
    cyan = colour_summary(run(r=-3.0).images[0])
    bluer = colour_summary(run(b=3.0).images[0])
    assert darker["brightness"] < base["brightness"] < brighter["brightness"]
    assert cyan["redness"] < base["redness"] < redder["redness"]
    assert base["blueness"] < bluer["blueness"]

    processed = run(bri=3.0)
    assert "Vec CC Enabled: True" in processed.infotexts[0] and "Vec CC Brightness: 3.0" in processed.infotexts[0]
    assert reports.messages == []


def test_dynamic_thresholding_changes_a_high_cfg_image_and_writes_its_infotext(sandbox, tiny_model):
    sandbox.add_corpus("sd-dynamic-thresholding")
    reports = sandbox.load()
    build_tabs()
    title = "Dynamic Thresholding (CFG Scale Fix)"
    plain = txt2img(tiny_model, cfg_scale=20)
    fixed = txt2img(tiny_model, {(title, 0): True, (title, 1): 5.0}, cfg_scale=20)  # Enable, Mimic CFG scale 5
    assert not np.array_equal(pixels(plain.images[0]), pixels(fixed.images[0]))
    info = fixed.infotexts[0]
    assert "Dynamic thresholding enabled: True" in info and "Mimic scale: 5.0" in info
    assert "Sampler: Euler," in info
    assert "Dynamic thresholding" not in plain.infotexts[0]
    # The temporary sampler it registers for the job is gone afterwards.
    from modules import sd_samplers
    assert not [name for name in sd_samplers.all_samplers_map if "_dynthres" in name]
    assert reports.messages == []


def test_cutoff_changes_the_image_and_its_hooks_fire(sandbox, tiny_model, capfd):
    sandbox.add_corpus("sd-webui-cutoff")
    reports = sandbox.load()
    build_tabs()
    prompt = "a red circle, a blue square"
    plain = txt2img(tiny_model, prompt=prompt)
    # Controls: 0 Enabled, 1 Target tokens, 2 Weight, 3 Disable for negative, 4 Strong, 5 Padding, 6 Interpolation, 7 Debug log
    cut = txt2img(tiny_model, {("Cutoff", 0): True, ("Cutoff", 1): "red, blue", ("Cutoff", 2): 1.0, ("Cutoff", 7): True}, prompt=prompt)
    assert not np.array_equal(pixels(plain.images[0]), pixels(cut.images[0]))
    # Its text-encoder hook logs each token it rewrote (debug log on).
    log = capfd.readouterr().err
    assert "red</w>" in log and "blue</w>" in log
    assert "Cutoff enabled: True" in cut.infotexts[0]
    assert reports.messages == []
