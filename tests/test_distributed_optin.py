"""Ray is opt-in: the default start never imports it; the flags ask for it and a missing Ray says how to add it."""
import os
import subprocess
import sys
import textwrap
import threading
import types

import pytest

from modules import cmd_args
from modules.distributed import cluster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_default_start_imports_no_ray(tmp_path):
    script = textwrap.dedent("""
        import sys
        from modules import initialize, processing
        initialize.initialize(load_model_in_background=False)
        import webui.app, webui.ui
        print("RAY" if any(m == "ray" or m.startswith("ray.") for m in sys.modules) else "NO RAY")
    """)
    env = dict(os.environ, SD_WEBUI_DATA_DIR=str(tmp_path), SD_WEBUI_TEST_ARGV="")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "NO RAY"


def test_the_flags_that_ask_for_workers():
    assert not cluster.requested(cmd_args.parser.parse_args([]))
    assert cluster.requested(cmd_args.parser.parse_args(["--workers", "ray", "--ray-workers", "2"]))
    assert cluster.requested(cmd_args.parser.parse_args(["--ray-address", "10.0.0.5:6379"]))
    with pytest.raises(SystemExit):
        cmd_args.parser.parse_args(["--workers", "dask"])


def test_without_ray_installed_the_flag_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when it is not installed
    with pytest.raises(RuntimeError, match=r'pip install "\.\[ray\]"'):
        cluster.import_ray()


def test_a_local_cluster_is_started_from_the_main_thread_only(monkeypatch):
    """Ray's GCS and raylet die with the thread that started them: the web UI's start-up thread ended and took the
    cluster (and with it the web UI) down a minute after start."""
    started = []
    fake_ray = types.SimpleNamespace(is_initialized=lambda: False, init=lambda **kwargs: started.append(kwargs))
    monkeypatch.setitem(sys.modules, "ray", fake_ray)
    flags = cmd_args.parser.parse_args(["--workers", "ray", "--ray-workers", "2"])
    errors = []
    thread = threading.Thread(target=lambda: errors.append(catch(cluster.connect, flags)), name="startup")
    thread.start()
    thread.join()
    assert "must be started from the main thread, not from thread 'startup'" in str(errors[0]) and started == []

    assert cluster.connect(flags) is fake_ray and started[0]["num_cpus"] >= 2  # the main thread starts it


def catch(fn, *args):
    try:
        fn(*args)
    except RuntimeError as e:
        return e


def test_a_front_of_ray_workers_never_loads_a_model_itself(monkeypatch, tiny_checkpoint_path):
    from modules import sd_models, shared
    monkeypatch.setattr(shared.cmd_opts, "workers", "ray")
    monkeypatch.setattr(shared, "sd_model", None)
    # what the checkpoint dropdown, POST /sdapi/v1/options and /reload-checkpoint end in
    assert sd_models.reload_model_weights(info=sd_models.CheckpointInfo(tiny_checkpoint_path)) is None
    assert shared.sd_model is None
