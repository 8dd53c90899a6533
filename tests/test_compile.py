"""--compile: each module compiled once per input shape, kept across jobs, and a compile failure falls back to eager
with a message (a real inductor compile runs in test_cuda_paths.py)."""
import pytest
import torch

from modules import torch_compile


class CountingBackend:
    """A torch.compile backend that counts its compilations and runs the traced graph as is."""

    def __init__(self):
        self.compilations = 0

    def __call__(self, graph_module, example_inputs):
        self.compilations += 1
        return graph_module.forward


class FailingBackend:
    def __call__(self, graph_module, example_inputs):
        raise RuntimeError("no C++ compiler found (simulated)")


class SmallNet(torch.nn.Module):
    """Conv, GroupNorm and attention-free like the VAE, with the UNet's call signature; small, so tracing is quick."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 8, 3, padding=1)
        self.norm = torch.nn.GroupNorm(4, 8)
        self.context = torch.nn.Linear(16, 8)
        self.out = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x, timesteps=None, context=None):
        h = torch.nn.functional.silu(self.norm(self.conv(x)))
        h = h + self.context(context).mean(1)[:, :, None, None] + timesteps[:, None, None, None] / 1000
        return self.out(h)


@pytest.fixture
def unet():
    import torch._dynamo
    torch._dynamo.reset()
    torch.manual_seed(0)
    return SmallNet().eval()


def inputs(side, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, side, side, generator=g), torch.tensor([5, 900]), torch.randn(2, 77, 16, generator=g)


def test_compiled_once_per_shape_and_equal_to_eager(unet):
    backend = CountingBackend()
    x8, t, c = inputs(8)
    with torch.no_grad():
        expected = unet(x8, t, context=c)
        torch_compile.compile_module(unet, "UNet", backend=backend)
        torch_compile.compile_module(unet, "UNet", backend=backend)  # a second apply changes nothing
        first = unet(x8, t, context=c)
        unet(*inputs(8, seed=1)[:2], context=c)  # same shape, other values: no recompile
        x16, _, _ = inputs(16)
        unet(x16, t, context=c)
        unet(x8, t, context=c)  # back to the first size: still compiled
    torch.testing.assert_close(first, expected, rtol=0, atol=1e-5)
    assert backend.compilations == 2


def test_a_failed_compile_runs_eagerly_with_a_message(unet, capsys):
    x, t, c = inputs(8)
    with torch.no_grad():
        expected = unet(x, t, context=c)
        forward = torch_compile.compile_module(unet, "UNet", backend=FailingBackend())
        out = unet(x, t, context=c)
        again = unet(x, t, context=c)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(again, expected)
    assert forward.failed
    err = capsys.readouterr().err
    assert err.count("--compile: the UNet could not be compiled") == 1 and "no C++ compiler" in err


def test_an_error_of_the_input_itself_is_raised_and_compiling_stays_on(unet):
    forward = torch_compile.compile_module(unet, "UNet", backend=CountingBackend())
    with torch.no_grad(), pytest.raises(RuntimeError):
        unet(torch.randn(2, 3, 8, 8), torch.tensor([1, 2]), context=inputs(8)[2])  # 3 channels: the net wants 4
    assert not forward.failed
