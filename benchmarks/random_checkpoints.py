"""Random-weight checkpoints at real model widths for the benchmarks, written once (fp16) to the temp folder and then
loaded the way the web UI loads any file."""
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_checkpoint(name):
    """The path of a random fp16 checkpoint for `name`: "sd15" or a family of tests/checkpoint_factory.py's
    FULL_FAMILY ("sd2", "sdxl", "sdxl_refiner")."""
    path = os.path.join(tempfile.gettempdir(), f"sdwebui-bench-{name}-fp16.safetensors")
    if os.path.exists(path):
        return path
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    os.environ.setdefault("SD_WEBUI_TEST_ARGV", "")  # the engine's flags are not the benchmark's command line
    import torch
    from tests import checkpoint_factory as factory
    if name == "sd15":
        sd = factory.sd15_state_dict(seed=0, dtype=torch.float16)
    elif name in factory.FULL_FAMILY:
        sd = factory.full_size_state_dict(name, seed=0, dtype=torch.float16)
    else:
        raise ValueError(f"no random checkpoint called {name!r}: sd15 or one of {', '.join(factory.FULL_FAMILY)}")
    print(f"writing a random {name} checkpoint to {path} (once)", file=sys.stderr, flush=True)
    from modules.safetensors_stream import save_file_streamed  # tensor by tensor: no second copy of a 7 GB dict
    save_file_streamed(sd, path + ".tmp.safetensors", metadata={"format": "pt"})
    os.replace(path + ".tmp.safetensors", path)
    return path
