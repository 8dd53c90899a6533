"""Tiny upscaler weights in the real key layouts that spandrel recognises (random or identity-like)."""
import torch


def _conv(sd, g, name, out_ch, in_ch, std):
    sd[f"{name}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=g) * std
    sd[f"{name}.bias"] = torch.zeros(out_ch)


def make_esrgan_state_dict(num_feat=8, num_blocks=1, scale=4, seed=0):
    """Real-ESRGAN (BasicSR RRDBNet) layout: conv_first, body.N.rdbK.convM, conv_body, conv_upK, conv_hr, conv_last.
    The growth channels are 32, as every released model and spandrel assume."""
    g = torch.Generator().manual_seed(seed)
    gc = 32
    sd = {}
    _conv(sd, g, "conv_first", num_feat, 3, 0.05)
    for b in range(num_blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                _conv(sd, g, f"body.{b}.rdb{r}.conv{c}", num_feat if c == 5 else gc, num_feat + (c - 1) * gc, 0.05)
    _conv(sd, g, "conv_body", num_feat, num_feat, 0.05)
    for u in range({2: 1, 4: 2, 8: 3}[scale]):
        _conv(sd, g, f"conv_up{u + 1}", num_feat, num_feat, 0.05)
    _conv(sd, g, "conv_hr", num_feat, num_feat, 0.05)
    _conv(sd, g, "conv_last", 3, num_feat, 0.05)
    return sd


def make_compact_state_dict(num_feat=8, num_conv=1, scale=4, seed=0, identity=False):
    """Real-ESRGAN Compact (SRVGGNetCompact) layout: body.0 conv, body.1 PReLU, ... last conv to 3*scale^2.
    The network adds a nearest upscale of its input, so with `identity` (last conv zero) it is exactly a
    nearest-neighbour upscaler; its receptive field is num_conv + 2 pixels."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    _conv(sd, g, "body.0", num_feat, 3, 0.1)
    sd["body.1.weight"] = torch.full((num_feat,), 0.25)
    for i in range(num_conv):
        _conv(sd, g, f"body.{2 + 2 * i}", num_feat, num_feat, 0.1)
        sd[f"body.{3 + 2 * i}.weight"] = torch.full((num_feat,), 0.25)
    last = 2 + 2 * num_conv
    _conv(sd, g, f"body.{last}", 3 * scale * scale, num_feat, 0.0 if identity else 0.1)
    return sd
