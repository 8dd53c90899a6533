"""Start the demo VAE as a block-average autoencoder, so training only has to learn edges.

From random weights the SD VAE needs tens of thousands of steps to learn even flat colours: the GroupNorm before
each conv_out normalises every group of two channels over the picture, which removes a picture's absolute colour
unless the network has found an encoding that survives it. The encoding used here: colour value s travels as the
pair (T + s, T - s), where T is a fixed pattern with a large spread, made from a constant channel by the zero
padding of one resampling conv (so it is the same for every picture). The group's mean is then mean(T) and its
spread sqrt(var T + mean s^2), both nearly independent of the picture, and the difference of the pair after
normalisation is 2s / spread: the colour survives. With every residual branch and attention output at zero and
the resampling convs set to 2x2 averaging / copying, the encoder starts as an 8x8 average of the RGB values
(latent channels 0-2) and the decoder as nearest-neighbour upsampling of them; channel 3 starts empty.
"""
from __future__ import annotations

import torch

CONSTANT = 10.0  # the constant channel the reference pattern is made from
PATTERN = 3.0  # the pattern is +-PATTERN*CONSTANT where the padding cuts in
SILU_SHIFT = 4.0  # the pairs' normalised values are shifted here, where SiLU is nearly linear (slope 1.01-1.07)


def _zero(module):
    torch.nn.init.zeros_(module.weight)
    if module.bias is not None:
        torch.nn.init.zeros_(module.bias)


def _silence_residual_branches(part):
    from ldm.modules.diffusionmodules.model import AttnBlock, ResnetBlock
    for module in part.modules():
        if isinstance(module, ResnetBlock):
            _zero(module.conv2)
        elif isinstance(module, AttnBlock):
            _zero(module.proj_out)


def _centre(conv) -> int:
    return conv.weight.shape[-1] // 2


def _copy_channels(conv, channels):
    for c in channels:
        conv.weight[c, c, _centre(conv), _centre(conv)] = 1.0


def _signed_pairs_from(conv, sources: int, constant_channel: int, copies: int):
    """conv writes source channel j as (s, -s) into channels 2j, 2j+1 (which later get the reference pattern) and
    again into 2(sources + j), 2(sources + j) + 1 for the first `copies` sources: the residual blocks' own
    GroupNorms see those without the pattern, which would dwarf the picture's detail; and CONSTANT into
    constant_channel."""
    _zero(conv)
    k = _centre(conv)
    for j in range(sources):
        conv.weight[2 * j, j, k, k] = 1.0
        conv.weight[2 * j + 1, j, k, k] = -1.0
    for j in range(copies):
        conv.weight[2 * (sources + j), j, k, k] = 1.0
        conv.weight[2 * (sources + j) + 1, j, k, k] = -1.0
    conv.bias[constant_channel] = CONSTANT


def _add_pattern(conv, pairs: int, constant_channel: int, taps):
    """Add to each pair's two channels the pattern a conv makes of the constant channel: taps (+a at one, -a at
    the other) cancel inside the picture and not where one of them reads the zero padding."""
    (y1, x1), (y2, x2) = taps
    for c in range(2 * pairs):
        conv.weight[c, constant_channel, y1, x1] += PATTERN
        conv.weight[c, constant_channel, y2, x2] -= PATTERN


def _norm_to_linear_range(norm, pairs: int):
    torch.nn.init.ones_(norm.weight)
    torch.nn.init.zeros_(norm.bias)
    norm.bias[:2 * pairs] = SILU_SHIFT


def _read_pairs(conv, targets: int, spread: float):
    """conv reads (silu(a) - silu(b)) * spread / 2 = s of each pair into output channel j."""
    _zero(conv)
    k = _centre(conv)
    for j in range(targets):
        conv.weight[j, 2 * j, k, k] = spread / 2
        conv.weight[j, 2 * j + 1, k, k] = -spread / 2


def _spread_at(norm, run):
    """The population std of the first group's input to norm when run() feeds a blank picture."""
    captured = {}
    handle = norm.register_forward_hook(lambda module, args, out: captured.setdefault("x", args[0]))
    try:
        run()
    finally:
        handle.remove()
    return float(captured["x"][0, 0:2].std(unbiased=False))


@torch.no_grad()
def init_block_average_autoencoder(vae, size: int = 64):
    """Set vae (ldm AutoencoderKL, equal channel counts at every level, 3 downsamplings) to the block-average
    autoencoder."""
    encoder, decoder = vae.encoder, vae.decoder
    constant = encoder.conv_in.out_channels - 1
    for part in (encoder, decoder):
        _silence_residual_branches(part)

    _signed_pairs_from(encoder.conv_in, 3, constant, copies=3)
    downsamples = [level.downsample.conv for level in encoder.down if hasattr(level, "downsample")]
    for conv in downsamples:
        _zero(conv)
        for c in range(conv.out_channels):
            conv.weight[c, c, 0:2, 0:2] = 0.25  # exact 2x2 average: never reads the right/bottom padding
    # last downsample: tap (2, 2) reads the padding on the last row and column of the 8x8 result
    _add_pattern(downsamples[-1], 3, constant, taps=((0, 0), (2, 2)))
    _norm_to_linear_range(encoder.norm_out, 3)
    latent_channels = vae.quant_conv.in_channels // 2
    _zero(encoder.conv_out)
    _zero(vae.quant_conv)
    _copy_channels(vae.quant_conv, range(vae.quant_conv.out_channels))
    vae.quant_conv.bias[latent_channels:] = -8.0  # near-deterministic posterior to start
    _zero(vae.post_quant_conv)
    _copy_channels(vae.post_quant_conv, range(vae.post_quant_conv.out_channels))

    _signed_pairs_from(decoder.conv_in, 3, constant, copies=latent_channels)
    upsamples = [level.upsample.conv for level in decoder.up if hasattr(level, "upsample")]  # 32->64 first
    for conv in upsamples:
        _zero(conv)
        _copy_channels(conv, range(conv.out_channels))
    # the first upsampling (to 16x16): a +-3x3 ring where the padding cuts the centre-cancelling kernel
    _add_pattern(upsamples[-1], 3, constant, taps=((1, 1), (0, 0)))
    _norm_to_linear_range(decoder.norm_out, 3)

    blank_picture = torch.zeros(1, 3, size, size)
    encoder_spread = _spread_at(encoder.norm_out, lambda: encoder(blank_picture))
    _read_pairs(encoder.conv_out, 3, encoder_spread)
    _calibrate(encoder.conv_out, lambda value: encoder(torch.full((1, 3, size, size), value))[:, :3])
    blank_latent = torch.zeros(1, latent_channels, size // 8, size // 8)
    decoder_spread = _spread_at(decoder.norm_out, lambda: decoder(blank_latent))
    _read_pairs(decoder.conv_out, 3, decoder_spread)
    _calibrate(decoder.conv_out, lambda value: decoder(
        torch.cat([torch.full((1, 3, size // 8, size // 8), value), blank_latent[:, 3:]], 1)))


def _calibrate(conv, run):
    """Rescale a readout so that a flat picture of 0.5 comes out as 0.5 and one of 0 as 0 (SiLU's slope)."""
    zero, half = run(0.0).mean(dim=(0, 2, 3)), run(0.5).mean(dim=(0, 2, 3))
    gain = (half - zero) / 0.5
    for j in range(gain.numel()):
        conv.weight[j] /= gain[j]
    conv.bias[:gain.numel()] -= zero / gain


def hold_colour_readout(vae):
    """Keep the encoder's readout of the three colour channels as built (its other rows, latent channel 3 and the
    log-variances, train freely): reading inputs of size ~4, Adam's first steps would scramble the colours."""
    rows = torch.zeros_like(vae.encoder.conv_out.weight)
    rows[3:vae.quant_conv.in_channels // 2] = 1.0
    rows[vae.quant_conv.in_channels // 2:] = 1.0
    vae.encoder.conv_out.weight.register_hook(lambda grad: grad * rows)
    bias_rows = rows[:, 0, 0, 0].clone()
    vae.encoder.conv_out.bias.register_hook(lambda grad: grad * bias_rows)


def structural_parameters(vae) -> list:
    """The layers that carry the colour encoding: trained slowly, or Adam's first steps would scramble it."""
    modules = [vae.encoder.norm_out, vae.decoder.norm_out, vae.decoder.conv_out]
    modules += [level.downsample.conv for level in vae.encoder.down if hasattr(level, "downsample")]
    modules += [level.upsample.conv for level in vae.decoder.up if hasattr(level, "upsample")]
    return [p for m in modules for p in m.parameters()]
