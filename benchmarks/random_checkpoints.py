"""Random-weight checkpoints at real model widths for the benchmarks, written once (fp16) to the temp folder and then
loaded the way the web UI loads any file."""
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_checkpoint(name):
    """The path of a random fp16 checkpoint for `name` ("sd15", "sdxl")."""
    path = os.path.join(tempfile.gettempdir(), f"sdwebui-bench-{name}-fp16.safetensors")
    if os.path.exists(path):
        return path
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import torch
    from tests import checkpoint_factory as factory
    if name == "sd15":
        sd = factory.sd15_state_dict(seed=0, dtype=torch.float16)
    elif name == "sdxl":
        sd = factory.sdxl_state_dict(seed=0, dtype=torch.float16)
    else:
        raise ValueError(f"no random checkpoint called {name!r}: sd15 or sdxl")
    print(f"writing a random {name} checkpoint to {path} (once)", file=sys.stderr, flush=True)
    factory.save_state_dict(sd, path + ".tmp.safetensors")
    os.replace(path + ".tmp.safetensors", path)
    return path
