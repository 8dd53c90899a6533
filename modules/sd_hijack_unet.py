"""The torch the UNet concatenates its skip connections with (A1111: modules.sd_hijack_unet.th).

The UNet calls `openaimodel.th.cat([h, skip], dim=1)`; `th` is this module's `TorchHijackForUnet`, so an extension
that replaces `th.cat` (FreeU scales the backbone and skip features there) changes what every UNet step does.
"""
import torch


class TorchHijackForUnet:
    """torch, except that `cat` first brings two feature maps of different sizes to the same size (A1111)."""

    def __getattr__(self, item):
        return getattr(torch, item)

    def cat(self, tensors, *args, **kwargs):
        if len(tensors) == 2:
            a, b = tensors
            if a.shape[-2:] != b.shape[-2:]:
                a = torch.nn.functional.interpolate(a, b.shape[-2:], mode="nearest")
            tensors = (a, b)
        return torch.cat(tensors, *args, **kwargs)


th = TorchHijackForUnet()
