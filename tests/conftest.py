"""Test-wide setup: the engine reads its flags and data folder from the environment, never from pytest's argv."""
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Every test session gets its own data folder, so tests never write outputs or config into the checkout.
_data_dir = tempfile.mkdtemp(prefix="sdwebui-test-data-")
os.environ.setdefault("SD_WEBUI_DATA_DIR", _data_dir)
os.environ.setdefault("SD_WEBUI_TEST_ARGV", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# No test runs a numba kernel, but importing rembg (the Rembg corpus extension) compiles pymatting's at import time:
# minutes of CPU on a fresh machine before numba's cache exists. Without the JIT they stay plain Python functions.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

from modules.cpu_threading import prefer_passive_omp_wait  # noqa: E402  (before the tests import torch)

prefer_passive_omp_wait()


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint_path(tmp_path_factory):
    """One tiny SD1 checkpoint (real key layout) for the whole session."""
    from tests.checkpoint_factory import make_tiny_sd1_checkpoint
    path = str(tmp_path_factory.mktemp("tiny-ckpt") / "tiny.safetensors")
    make_tiny_sd1_checkpoint(path)
    return path


@pytest.fixture(scope="session")
def family_checkpoints(tmp_path_factory):
    """get(family, variant="base") -> path of a tiny checkpoint of that family (with its yaml), made once a session."""
    from tests.checkpoint_factory import make_family_checkpoint
    folder = tmp_path_factory.mktemp("families")
    made = {}

    def get(family, variant="base"):
        if (family, variant) not in made:
            made[family, variant], _ = make_family_checkpoint(folder / f"{family}-{variant}.safetensors", family, variant=variant)
        return str(made[family, variant])
    return get


@pytest.fixture(scope="session")
def shared_webui(tmp_path_factory):
    """One plain web UI server for every browser test that needs nothing else, started by the first test that asks
    for it (tests/shared_webui.py says what its data folder holds and how the tests share it)."""
    from tests import shared_webui
    with shared_webui.start(tmp_path_factory.mktemp("shared-webui")) as server:
        yield server


@pytest.fixture
def tiny_model(tiny_checkpoint_path):
    """`shared.sd_model` loaded from the session's tiny checkpoint (reloaded only if another model replaced it)."""
    from modules import sd_models, shared
    info = getattr(shared.sd_model, "sd_checkpoint_info", None)
    if shared.sd_model is None or info is None or info.filename != tiny_checkpoint_path:
        sd_models.load_model(sd_models.CheckpointInfo(tiny_checkpoint_path))
    return shared.sd_model


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` run only where CUDA works (benchmarks/gpu_check.sh runs them on a GPU machine); tests
    marked `ray` (minutes of Ray start-up) only when selected with `-m ray`, tests marked `full_size` (models at
    their real widths: tens of GB, minutes each) only with `-m full_size`."""
    if "ray" not in (config.option.markexpr or ""):
        skip_ray = pytest.mark.skip(reason="starts a Ray cluster: run with -m ray (README, Tests)")
        for item in items:
            if item.get_closest_marker("ray") is not None:
                item.add_marker(skip_ray)
    if "full_size" not in (config.option.markexpr or ""):
        full_size = [item for item in items if item.get_closest_marker("full_size") is not None]
        if full_size:
            config.hook.pytest_deselected(items=full_size)
            items[:] = [item for item in items if item.get_closest_marker("full_size") is None]
    cuda_items = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not cuda_items:
        return
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (run benchmarks/gpu_check.sh on a GPU machine)")
    for item in cuda_items:
        item.add_marker(skip)
