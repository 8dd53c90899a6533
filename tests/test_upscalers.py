"""Upscalers: registry, model files found and recognised, exact sizes, seamless tiling, clear errors."""
import os
import pickle
import shutil

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from modules import images, modelloader, shared
from modules.upscaler import UpscalerError
from modules.upscaler_utils import check_memory, tile_starts, upscale_with_model
from tests.upscaler_factory import make_compact_state_dict, make_esrgan_state_dict


@pytest.fixture
def esrgan_dir():
    path = shared.cmd_opts.esrgan_models_path
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)
    modelloader.unload_upscaler_models()
    modelloader.load_upscalers()


def noise_image(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def by_name(name):
    return next(x for x in shared.sd_upscalers if x.name == name)


def test_builtin_upscalers_come_first_and_no_model_means_not_listed(esrgan_dir):
    names = [x.name for x in modelloader.load_upscalers()]
    assert names[:3] == ["None", "Lanczos", "Nearest"]
    assert "ESRGAN_4x" not in names  # nothing is downloaded, so nothing missing is offered


def test_model_files_are_found_recognised_and_run(esrgan_dir):
    torch.save(make_esrgan_state_dict(), os.path.join(esrgan_dir, "4x_tiny_esrgan.pth"))
    safetensors.torch.save_file(make_compact_state_dict(), os.path.join(esrgan_dir, "4x_tiny_compact.safetensors"))
    names = [x.name for x in modelloader.load_upscalers()]
    assert names == ["None", "Lanczos", "Nearest", "4x_tiny_compact", "4x_tiny_esrgan"]

    esrgan = modelloader.load_spandrel_model(by_name("4x_tiny_esrgan").data_path, device="cpu")
    compact = modelloader.load_spandrel_model(by_name("4x_tiny_compact").data_path, device="cpu")
    assert (esrgan.architecture.id, esrgan.scale) == ("ESRGAN", 4)
    assert (compact.architecture.id, compact.scale) == ("Compact", 4)

    img = noise_image(20, 12)
    for name in ("4x_tiny_esrgan", "4x_tiny_compact"):
        data = by_name(name)
        assert data.scaler.upscale(img, 4, data.data_path).size == (80, 48)
        assert data.scaler.upscale(img, 2, data.data_path).size == (40, 24)  # int(w*2)//8*8


@pytest.mark.parametrize("name,scale,size,expected", [
    ("Lanczos", 2.5, (33, 17), (80, 40)),
    ("Nearest", 2, (64, 40), (128, 80)),
    ("None", 1, (100, 60), (96, 56)),
    ("Lanczos", 0.5, (64, 64), (32, 32)),
])
def test_builtin_upscale_sizes_are_multiples_of_8(name, scale, size, expected):
    modelloader.load_upscalers()
    data = by_name(name)
    assert data.scaler.upscale(noise_image(*size), scale, data.data_path).size == expected


def test_tiled_equals_untiled_for_a_local_model():
    """The compact net sees 3 pixels around each output; with overlap 12 the blend ignores those border pixels."""
    import spandrel
    model = spandrel.MAIN_REGISTRY.load(make_compact_state_dict(num_conv=1, seed=3)).eval()
    img = noise_image(70, 45, seed=1)
    whole = np.asarray(upscale_with_model(model, img, tile_size=0, tile_overlap=0)).astype(int)
    tiled = np.asarray(upscale_with_model(model, img, tile_size=24, tile_overlap=12)).astype(int)
    assert whole.shape == tiled.shape == (180, 280, 3)
    assert np.abs(whole - tiled).max() <= 1


def test_identity_like_model_shows_no_seam_with_default_tiles():
    import spandrel
    model = spandrel.MAIN_REGISTRY.load(make_compact_state_dict(identity=True)).eval()
    img = noise_image(50, 37, seed=2)
    tiled = upscale_with_model(model, img, tile_size=16, tile_overlap=8)
    nearest = img.resize((200, 148), Image.Resampling.NEAREST)
    assert np.abs(np.asarray(tiled).astype(int) - np.asarray(nearest).astype(int)).max() <= 1


def test_tiles_cover_the_image_with_at_least_the_overlap():
    for length in (1, 16, 17, 100, 193, 1000):
        starts = tile_starts(length, 16, 4)
        assert starts[0] == 0 and starts[-1] + min(16, length) == length
        assert all(b - a <= 12 for a, b in zip(starts, starts[1:]))


def test_one_pixel_image(esrgan_dir):
    safetensors.torch.save_file(make_compact_state_dict(), os.path.join(esrgan_dir, "tiny.safetensors"))
    modelloader.load_upscalers()
    data = by_name("tiny")
    one = Image.new("RGB", (1, 1), (200, 10, 10))
    assert data.scaler.upscale(one, 8, data.data_path).size == (8, 8)
    with pytest.raises(UpscalerError, match="1x1 image by 4 gives 0x0"):
        data.scaler.upscale(one, 4, data.data_path)


def test_not_an_upscaler_is_a_clear_error(tmp_path):
    path = tmp_path / "not_upscaler.pth"
    torch.save({"linear.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(modelloader.ModelFileError, match=r"not_upscaler\.pth: not an upscaler"):
        modelloader.load_spandrel_model(str(path), device="cpu")


def test_truncated_file_is_a_clear_error(tmp_path):
    good = tmp_path / "good.pth"
    torch.save(make_compact_state_dict(), good)
    data = good.read_bytes()
    for name in ("cut.pth", "cut.safetensors"):
        path = tmp_path / name
        if name.endswith(".safetensors"):
            safetensors.torch.save_file(make_compact_state_dict(), path)
            data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(modelloader.ModelFileError, match=name.replace(".", r"\.") + ".*(truncated|damaged)"):
            modelloader.load_spandrel_model(str(path), device="cpu")


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['SD_WEBUI_DATA_DIR']}/pwned",))


def test_pickle_with_code_is_refused_and_never_runs(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"body.0.weight": torch.zeros(1), "x": _Evil()}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(modelloader.ModelFileError, match=r"evil\.pth: refused"):
        modelloader.load_spandrel_model(str(path), device="cpu")
    assert not os.path.exists(os.path.join(os.environ["SD_WEBUI_DATA_DIR"], "pwned"))


def test_broken_model_in_folder_does_not_break_listing_and_fails_clearly(esrgan_dir):
    with open(os.path.join(esrgan_dir, "broken.pth"), "wb") as f:
        f.write(b"not a model at all")
    names = [x.name for x in modelloader.load_upscalers()]
    assert "broken" in names
    data = by_name("broken")
    with pytest.raises(modelloader.ModelFileError, match="broken.pth"):
        data.scaler.upscale(noise_image(16, 16), 4, data.data_path)


def test_huge_image_is_refused_before_running(monkeypatch):
    import spandrel
    from modules import upscaler_utils
    monkeypatch.setattr(upscaler_utils, "_free_bytes", lambda device: (8 * 1024 ** 3, 8 * 1024 ** 3))
    model = spandrel.MAIN_REGISTRY.load(make_compact_state_dict()).eval()
    with pytest.raises(UpscalerError, match="400000x400000 image by 4.*memory"):
        check_memory(model, 400_000, 400_000, 192)
    # the result fits, but one untiled pass over the whole image would not: the message points at tiling
    with pytest.raises(UpscalerError, match="Set a tile size"):
        check_memory(model, 3000, 3000, 0)
    check_memory(model, 3000, 3000, 192)


@pytest.mark.parametrize("mode,src,dst", [
    (0, (100, 50), (64, 64)),
    (1, (100, 50), (64, 64)),
    (2, (100, 50), (64, 64)),
    (1, (50, 100), (96, 48)),
    (2, (50, 100), (96, 48)),
    (3, (30, 20), (64, 40)),
])
def test_resize_image_gives_exact_size(mode, src, dst):
    out = images.resize_image(mode, noise_image(*src), *dst)
    assert out.size == dst


def test_resize_image_with_a_model_upscaler(esrgan_dir):
    safetensors.torch.save_file(make_compact_state_dict(identity=True), os.path.join(esrgan_dir, "ident.safetensors"))
    modelloader.load_upscalers()
    img = noise_image(16, 16)
    out = images.resize_image(0, img, 64, 64, upscaler_name="ident")
    assert out.size == (64, 64)
    # the identity-like model upscales like nearest neighbour; Lanczos would blur the noise
    nearest = np.asarray(img.resize((64, 64), Image.Resampling.NEAREST)).astype(int)
    assert np.abs(np.asarray(out).astype(int) - nearest).max() <= 1


def test_resize_and_fill_fills_borders_from_the_edges():
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    out = images.resize_image(2, img, 20, 20)
    assert out.getpixel((10, 0)) == (255, 0, 0) and out.getpixel((10, 19)) == (255, 0, 0)
