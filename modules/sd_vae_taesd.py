"""TAESD, the tiny autoencoder used for fast live previews when its weights are in models/VAE-approx/: each latent
format has its own (taesd_decoder for SD1/SD2, taesdxl_decoder for SDXL; the family table says which).

The decoder is a plain nn.Sequential so its state-dict keys are the published files' ("1.weight", "3.conv.0.weight").
"""
import os

import torch
from torch import nn

from modules import devices, shared

DECODER_EXTENSIONS = (".safetensors", ".pth")


def conv(n_in, n_out, **kwargs):
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + self.skip(x))


def decoder(latent_channels=4):
    """Latent (scaled, as the UNet sees it) -> image in [0, 1] at 8x the size."""
    stages = []
    for _ in range(3):
        stages += [Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False)]
    return nn.Sequential(Clamp(), conv(latent_channels, 64), nn.ReLU(), *stages, Block(64, 64), conv(64, 3))


def find_decoder_file(name="taesd_decoder"):
    folder = os.path.join(shared.models_path, "VAE-approx")
    for extension in DECODER_EXTENSIONS:
        path = os.path.join(folder, name + extension)
        if os.path.exists(path):
            return path
    return None


def _read_state_dict(path):
    if path.endswith(".safetensors"):
        import safetensors.torch
        return safetensors.torch.load_file(path, device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


_decoders = {}  # path -> loaded decoder


def decoder_model(name="taesd_decoder"):
    """The TAESD decoder `name` (models/VAE-approx/<name>.safetensors or .pth), loaded once; None when absent."""
    path = find_decoder_file(name)
    if path is None:
        return None
    if path not in _decoders:
        model = decoder()
        try:
            model.load_state_dict(_read_state_dict(path))
        except Exception as e:
            raise ValueError(f"{path} is not a TAESD decoder: {e}") from e
        _decoders[path] = model.eval().to(devices.device, devices.dtype_vae)
    return _decoders[path]
