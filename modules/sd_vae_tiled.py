"""VAE decode and encode in tiles, for images whose whole-image pass would not fit in memory; same result as the
whole-image pass (to rounding), seams included.

Decode: the layers up to and including the mid-block (whose attention sees every pixel) run on the whole latent: they
work at 1/8 of the image's size and are cheap. The up path, where the memory goes (128-512 channels at up to full
size), runs tile by tile; each tile carries a margin wider than the distance a tile edge's zero padding can travel
inward through the up path's convolutions, so its centre ("core") is computed exactly as in the whole image.
GroupNorm normalises over the whole image, so the tiles advance in lockstep: at each GroupNorm the statistics of
every tile's core are combined (Chan's parallel mean/variance) into the whole image's, and each tile is normalised
with those. Encode mirrors it: the down path in tiles, the mid-block on the whole latent-size tensor.

Between GroupNorms every tile's activations rest in RAM (keeping them all on the GPU would take as much as the
whole-image pass), so the GPU only ever holds one tile's working set.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ldm.modules.diffusionmodules.model import Decoder, Encoder, nonlinearity
from modules import devices, lowvram

DEFAULT_TILE = 64  # latent pixels of a tile's core (512 image pixels)


@dataclass
class Tile:
    data: torch.Tensor   # (N, C, h, w): the core and its margin, on the storage device
    core: tuple          # (top, bottom, left, right) of the core inside `data`
    origin: tuple        # (y, x) of `data`'s first pixel in the whole tensor


def can_tile(vae) -> bool:
    """The tiled path covers the SD/SDXL VAE layout: no attention outside the mid-block, no early exits."""
    encoder, decoder = vae.encoder, vae.decoder
    if not isinstance(encoder, Encoder) or not isinstance(decoder, Decoder):
        return False
    return (not any(len(level.attn) for level in encoder.down) and not any(len(level.attn) for level in decoder.up)
            and not decoder.give_pre_end)


def decoder_reach(decoder) -> int:
    """Latent pixels that a tile edge's error travels inward through the up path (one per 3x3 conv, at that conv's
    resolution)."""
    reach, scale = 0.0, 1
    for i_level in reversed(range(decoder.num_resolutions)):
        reach += 2 * (decoder.num_res_blocks + 1) / scale
        if i_level != 0:
            scale *= 2
            reach += 1 / scale
    reach += 1 / scale  # conv_out
    return math.ceil(reach)


def encoder_reach(encoder) -> int:
    """Image pixels that a tile edge's error travels inward through the down path (a stride-2 conv reads two pixels
    past its window's start)."""
    reach, scale = 1, 1  # conv_in
    for i_level in range(encoder.num_resolutions):
        reach += 2 * encoder.num_res_blocks * scale
        if i_level != encoder.num_resolutions - 1:
            reach += 2 * scale
            scale *= 2
    return reach


def _cut(x, tile, margin, align=1):
    """Tiles of x (N, C, H, W): cores of `tile` pixels, each with `margin` pixels around it (clipped at the edges);
    every boundary on a multiple of `align`."""
    height, width = x.shape[-2:]
    tiles = []
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            y0, x0 = max(0, top - margin), max(0, left - margin)
            y1, x1 = min(height, bottom + margin), min(width, right + margin)
            y0, x0 = y0 - y0 % align, x0 - x0 % align
            tiles.append(Tile(x[:, :, y0:y1, x0:x1], (top - y0, bottom - y0, left - x0, right - x0), (y0, x0)))
    return tiles


def _core(tile):
    top, bottom, left, right = tile.core
    return tile.data[:, :, top:bottom, left:right]


class _Lockstep:
    """Runs per-tile steps on the compute device while the tiles rest on the storage device."""

    def __init__(self, tiles, device, storage):
        self.tiles, self.device, self.storage = tiles, device, storage

    def each(self, fn, scale=1):
        """Replace each tile's data by fn(data on the compute device); `scale` resizes the coordinates (upsampling 2,
        downsampling 0.5)."""
        for tile in self.tiles:
            tile.data = fn(tile.data.to(self.device)).to(self.storage)
            if scale != 1:
                tile.core = tuple(int(c * scale) for c in tile.core)
                tile.origin = tuple(int(c * scale) for c in tile.origin)

    def group_norm_stats(self, norm):
        """(mean, rstd) per sample and group over the whole image, from the tiles' cores."""
        count, mean, m2 = 0, None, None
        for tile in self.tiles:
            core = _core(tile).to(self.device, torch.float32)
            grouped = core.reshape(core.shape[0], norm.num_groups, -1)
            n = grouped.shape[-1]
            tile_mean = grouped.mean(-1).double()
            tile_m2 = ((grouped - tile_mean[..., None].float()) ** 2).sum(-1).double()
            if mean is None:
                count, mean, m2 = n, tile_mean, tile_m2
                continue
            delta = tile_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + tile_m2 + delta ** 2 * (count * n / total)
            count = total
        var = m2 / count
        return mean.float(), torch.rsqrt(var + norm.eps).float()


def _normalise(norm, x, stats):
    mean, rstd = stats
    grouped = x.float().reshape(x.shape[0], norm.num_groups, -1)
    out = ((grouped - mean[..., None]) * rstd[..., None]).reshape(x.shape)
    out = out * norm.weight.float()[None, :, None, None] + norm.bias.float()[None, :, None, None]
    return out.to(x.dtype)


def _resnet_block(block, run):
    """ResnetBlock.forward (no timestep embedding) over lockstep tiles."""
    inputs = [tile.data for tile in run.tiles]
    stats = run.group_norm_stats(block.norm1)
    run.each(lambda x: block.conv1(nonlinearity(_normalise(block.norm1, x, stats))))
    stats = run.group_norm_stats(block.norm2)
    for tile, x in zip(run.tiles, inputs):
        h = block.conv2(nonlinearity(_normalise(block.norm2, tile.data.to(run.device), stats)))
        x = x.to(run.device)
        if block.in_channels != block.out_channels:
            x = block.conv_shortcut(x) if block.use_conv_shortcut else block.nin_shortcut(x)
        tile.data = (x + h).to(run.storage)


def _assemble(run, size, device):
    """The tiles' cores put together into one (N, C, *size) tensor on `device`."""
    first = _core(run.tiles[0])
    out = torch.empty((*first.shape[:2], *size), dtype=first.dtype, device=device)
    for tile in run.tiles:
        core = _core(tile)
        top, bottom, left, right = tile.core
        y, x = tile.origin[0] + top, tile.origin[1] + left
        out[:, :, y:y + bottom - top, x:x + right - left] = core.to(device)
    return out


def decode_tiled(vae, z, tile=DEFAULT_TILE, storage=devices.cpu):
    """vae.decode(z) (z: (N, C, h, w) latents for the VAE, already divided by the scale factor) in tiles of `tile`
    latent pixels, computed on z's device; the tiles rest on `storage` between GroupNorms."""
    decoder = vae.decoder
    device = z.device
    h = decoder.conv_in(vae.post_quant_conv(z))
    h = decoder.mid.block_2(decoder.mid.attn_1(decoder.mid.block_1(h, None)), None)
    latent_h, latent_w = h.shape[-2:]
    run = _Lockstep(_cut(h.to(storage), tile, decoder_reach(decoder)), device, storage)
    del h
    scale = 1
    for i_level in reversed(range(decoder.num_resolutions)):
        up = decoder.up[i_level]
        for block in up.block:
            _resnet_block(block, run)
        if i_level != 0:
            run.each(lambda x: up.upsample(x), scale=2)
            scale *= 2
    stats = run.group_norm_stats(decoder.norm_out)
    run.each(lambda x: decoder.conv_out(nonlinearity(_normalise(decoder.norm_out, x, stats))))
    out = _assemble(run, (latent_h * scale, latent_w * scale), device)
    return torch.tanh(out) if decoder.tanh_out else out


def encode_tiled(vae, x, tile=DEFAULT_TILE, storage=devices.cpu):
    """vae.encode(x) (x: (N, 3, H, W) in [-1, 1], H and W multiples of 8) in tiles of `tile` latent pixels; returns
    the DiagonalGaussianDistribution, as vae.encode does."""
    from ldm.modules.distributions.distributions import DiagonalGaussianDistribution
    encoder = vae.encoder
    device = x.device
    factor = _factor(vae)
    margin = math.ceil(encoder_reach(encoder) / factor) * factor
    run = _Lockstep(_cut(x.to(storage), tile * factor, margin, align=factor), device, storage)
    run.each(encoder.conv_in)
    for i_level in range(encoder.num_resolutions):
        down = encoder.down[i_level]
        for block in down.block:
            _resnet_block(block, run)
        if i_level != encoder.num_resolutions - 1:
            run.each(lambda t: down.downsample(t), scale=0.5)
    h = _assemble(run, (x.shape[-2] // factor, x.shape[-1] // factor), device)
    del run
    h = encoder.mid.block_2(encoder.mid.attn_1(encoder.mid.block_1(h, None)), None)
    moments = vae.quant_conv(encoder.conv_out(nonlinearity(encoder.norm_out(h))))
    return DiagonalGaussianDistribution(moments)


# ---- when to tile ---------------------------------------------------------------------------------------------------

# A whole-image decode holds about this many of its widest full-resolution tensor at its peak (the SD VAE, whose
# last upsample makes 256 channels at full size: measured 5.1x at 256x256, 4.9x at 384x384); encode is alike.
PEAK_TENSORS = 5


def full_resolution_bytes(vae, batch, height, width, dtype) -> int:
    """Bytes of the VAE's widest full-resolution activation for an image of height x width pixels: the last level's,
    or the upsampled output of the level before it."""
    levels = vae.decoder.up
    channels = max(levels[i].block[-1].out_channels for i in range(min(2, len(levels))))
    return batch * channels * height * width * torch.empty((), dtype=dtype).element_size()


def available_bytes(device) -> int:
    """Memory a pass may take on `device`: free VRAM plus what torch's cache holds unused (a CPU: unlimited)."""
    if device.type != "cuda":
        return 2 ** 62
    free, _total = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def plan(vae, batch, height, width, dtype, device, available=None):
    """None when the whole-image pass fits in `available` bytes (default: what `device` has free); else the tile
    size (latent pixels of its core) whose working set, margins included, takes at most half of it."""
    available = available_bytes(device) if available is None else available
    unit = full_resolution_bytes(vae, batch, height, width, dtype)
    if PEAK_TENSORS * unit <= available:
        return None
    factor = _factor(vae)
    per_latent_pixel = unit / ((height // factor) * (width // factor))
    side = int(math.sqrt(available / 2 / (PEAK_TENSORS * per_latent_pixel)))  # tile side with margins
    return max(8, side - 2 * decoder_reach(vae.decoder))


# ---- the entry points -----------------------------------------------------------------------------------------------

def _factor(vae):
    return 2 ** (vae.decoder.num_resolutions - 1)


def _plan_after_running_out(vae, batch, height, width, dtype, device):
    """A tile plan after the whole pass ran out of memory (the estimate was too hopeful): at most what is free now."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    whole = PEAK_TENSORS * full_resolution_bytes(vae, batch, height, width, dtype)
    return plan(vae, batch, height, width, dtype, device, available=min(available_bytes(device), whole - 1))


def decode(vae, z, whole_decode=None):
    """vae.decode(z), in tiles when the whole image would not fit in the free memory of the VAE's device or when the
    whole pass runs out of it. z: latents for the VAE (already divided by the model's scale factor). `whole_decode`:
    the whole-image decode to use (default vae.decode)."""
    whole_decode = whole_decode or vae.decode
    if not can_tile(vae):
        return whole_decode(z)
    lowvram.before_running(vae)
    device, factor = vae.device, _factor(vae)
    z = z.to(device)
    size = (z.shape[0], z.shape[-2] * factor, z.shape[-1] * factor, z.dtype, device)
    tile = plan(vae, *size)
    if tile is None:
        try:
            return whole_decode(z)
        except torch.OutOfMemoryError:
            tile = _plan_after_running_out(vae, *size)
    print(f"VAE decode of {size[2]}x{size[1]} does not fit in free memory: decoding in tiles of {tile * factor} pixels")
    return decode_tiled(vae, z, tile)


def encode(vae, x, whole_encode=None):
    """vae.encode(x) (x in [-1, 1], sides multiples of 8), in tiles when the whole image would not fit (as decode)."""
    whole_encode = whole_encode or vae.encode
    if not can_tile(vae):
        return whole_encode(x)
    lowvram.before_running(vae)
    device = vae.device
    x = x.to(device)
    size = (x.shape[0], x.shape[-2], x.shape[-1], x.dtype, device)
    tile = plan(vae, *size)
    if tile is None:
        try:
            return whole_encode(x)
        except torch.OutOfMemoryError:
            tile = _plan_after_running_out(vae, *size)
    print(f"VAE encode of {size[2]}x{size[1]} does not fit in free memory: encoding in tiles of {tile * _factor(vae)} pixels")
    return encode_tiled(vae, x, tile)


def install(vae):
    """Route every decode and encode of this VAE (whoever calls it: the pipeline, hires fix, extensions) through
    `decode`/`encode`, so a picture too large for free memory is done in tiles. Installed once per loaded model, after
    the memory mode's own wrappers (modules.lowvram), which the whole-image pass still goes through."""
    whole_decode, whole_encode = vae.decode, vae.encode
    vae.decode = lambda z: decode(vae, z, whole_decode)
    vae.encode = lambda x: encode(vae, x, whole_encode)
