"""--compile: the UNet and the VAE's decoder and encoder run through torch.compile.

Each is compiled once per input shape (static shapes: an image size's first job compiles, later jobs at that size
reuse it) and the compiled code stays with the loaded model across jobs; inductor's on-disk cache (under the data
folder's cache/) makes a restart's compile mostly a cache read. LoRA patches weights in place and the weights are the
compiled graph's inputs, so they need no recompile.

When compiling (or running the compiled code) fails while the plain module works on the same input, the module says
so once and runs eagerly from then on; an error the plain module raises too is the caller's, and is raised as is.
"""
import os
import sys

import torch

BACKEND = "inductor"
MODE = "default"              # "max-autotune" compiles for minutes; the default mode's kernels are close
RECOMPILE_LIMIT = 32          # image sizes per module before torch stops compiling new ones


class CompiledForward:
    """Stands in for `module.forward`: the compiled forward, or the eager one after a compile failure."""

    def __init__(self, module, name, backend=None):
        self.name = name
        self.eager = module.forward
        self.compiled = torch.compile(self.eager, backend=backend or BACKEND, mode=None if backend else MODE, dynamic=False)
        self.failed = False

    def __call__(self, *args, **kwargs):
        if self.failed:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as compile_error:
            result = self.eager(*args, **kwargs)  # raises when the input itself is the problem
            self.failed = True
            cause = getattr(compile_error, "inner_exception", None) or compile_error  # torch wraps the backend's error
            reason = (str(cause).strip().splitlines() or [""])[0]
            print(f"--compile: the {self.name} could not be compiled ({type(cause).__name__}: {reason}); "
                  f"it runs without compiling from now on", file=sys.stderr)
            return result


def configure_cache(data_path):
    """Inductor's caches under the data folder, so compiled kernels survive a restart."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(data_path, "cache", "torch_compile"))
    import torch._dynamo
    import torch._inductor.config
    torch._inductor.config.fx_graph_cache = True
    torch._dynamo.config.recompile_limit = RECOMPILE_LIMIT


def compile_module(module, name, backend=None):
    """Replace `module.forward` by its CompiledForward (once)."""
    if not isinstance(module.forward, CompiledForward):
        module.forward = CompiledForward(module, name, backend)
    return module.forward


def apply(sd_model, backend=None):
    """Compile the loaded model's UNet and VAE (--compile)."""
    from modules import shared
    configure_cache(shared.data_path)
    compile_module(sd_model.model.diffusion_model, "UNet", backend)
    compile_module(sd_model.first_stage_model.decoder, "VAE decoder", backend)
    compile_module(sd_model.first_stage_model.encoder, "VAE encoder", backend)
