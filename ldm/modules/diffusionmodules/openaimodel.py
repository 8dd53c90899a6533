"""The denoising UNet (original path: ldm.modules.diffusionmodules.openaimodel; extensions hook these classes).

Layout, as in the original checkpoints (`model.diffusion_model.` + these names):
  time_embed.{0,2}                       timestep MLP
  input_blocks.N.{0,1}                   conv_in, then per level: ResBlock [+ SpatialTransformer], Downsample between levels
  middle_block.{0,1,2}                   ResBlock, SpatialTransformer, ResBlock
  output_blocks.N.{0,1,2}                ResBlock on the skip-concatenated input [+ SpatialTransformer] [+ Upsample]
  out.{0,2}                              GroupNorm, SiLU, conv to the output channels
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.attention import SpatialTransformer

# The skip concatenation's torch: modules.sd_hijack_unet puts its `th` here (as A1111 does) so extensions can hook
# th.cat (FreeU).
th = torch


def timestep_embedding(timesteps, dim, max_period=10000, repeat_only=False):
    """Sinusoidal embedding of (fractional) timesteps: [cos(t*f), sin(t*f)] with f = max_period^(-i/half)."""
    if repeat_only:
        return timesteps[:, None].repeat(1, dim)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class GroupNorm32(nn.GroupNorm):
    """GroupNorm in float32 when its weights are (as the original: half overflows here), else in their dtype: torch's
    group_norm takes float32 input only with float32 weights. CUDA's autocast upcasts half weights anyway; outside
    autocast (--precision half, --upcast-sampling, --precision full) they normalise in half, as A1111's do, the
    kernels summing in float32."""

    def forward(self, x):
        dtype = torch.float32 if self.weight is None or self.weight.dtype == torch.float32 else self.weight.dtype
        return super().forward(x.to(dtype)).type(x.dtype)


def normalization(channels):
    return GroupNorm32(32, channels)


def conv_nd(dims, *args, **kwargs):
    if dims == 1:
        return nn.Conv1d(*args, **kwargs)
    if dims == 2:
        return nn.Conv2d(*args, **kwargs)
    if dims == 3:
        return nn.Conv3d(*args, **kwargs)
    raise ValueError(f"unsupported dimensions: {dims}")


def linear(*args, **kwargs):
    return nn.Linear(*args, **kwargs)


def avg_pool_nd(dims, *args, **kwargs):
    return {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[dims](*args, **kwargs)


def zero_module(module):
    for p in module.parameters():
        p.detach().zero_()
    return module


class TimestepBlock(nn.Module):
    """A module whose forward takes the timestep embedding as a second argument."""

    def forward(self, x, emb):
        raise NotImplementedError


class TimestepEmbedSequential(nn.Sequential, TimestepBlock):
    """A Sequential that hands the timestep embedding and the text context to the children that take them."""

    def forward(self, x, emb, context=None):
        for layer in self:
            if isinstance(layer, TimestepBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            else:
                x = layer(x)
        return x


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, then an optional 3x3 conv."""

    def __init__(self, channels, use_conv, dims=2, out_channels=None, padding=1):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.dims = dims
        if use_conv:
            self.conv = conv_nd(dims, self.channels, self.out_channels, 3, padding=padding)

    def forward(self, x):
        if self.dims == 3:
            x = F.interpolate(x, (x.shape[2], x.shape[3] * 2, x.shape[4] * 2), mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.use_conv:
            x = self.conv(x)
        return x


class Downsample(nn.Module):
    """2x downsampling by a strided 3x3 conv (or average pooling)."""

    def __init__(self, channels, use_conv, dims=2, out_channels=None, padding=1):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.dims = dims
        stride = 2 if dims != 3 else (1, 2, 2)
        if use_conv:
            self.op = conv_nd(dims, self.channels, self.out_channels, 3, stride=stride, padding=padding)
        else:
            self.op = avg_pool_nd(dims, kernel_size=stride, stride=stride)

    def forward(self, x):
        return self.op(x)


class ResBlock(TimestepBlock):
    """Two 3x3 convs with the timestep embedding added in between, plus a (1x1 conv when widths differ) skip."""

    def __init__(self, channels, emb_channels, dropout, out_channels=None, use_conv=False, use_scale_shift_norm=False,
                 dims=2, use_checkpoint=False, up=False, down=False):
        super().__init__()
        self.channels = channels
        self.emb_channels = emb_channels
        self.dropout = dropout
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.use_checkpoint = use_checkpoint
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(normalization(channels), nn.SiLU(), conv_nd(dims, channels, self.out_channels, 3, padding=1))
        self.updown = up or down
        if up:
            self.h_upd = Upsample(channels, False, dims)
            self.x_upd = Upsample(channels, False, dims)
        elif down:
            self.h_upd = Downsample(channels, False, dims)
            self.x_upd = Downsample(channels, False, dims)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(nn.SiLU(), linear(emb_channels, 2 * self.out_channels if use_scale_shift_norm else self.out_channels))
        self.out_layers = nn.Sequential(normalization(self.out_channels), nn.SiLU(), nn.Dropout(p=dropout),
                                        conv_nd(dims, self.out_channels, self.out_channels, 3, padding=1))
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        elif use_conv:
            self.skip_connection = conv_nd(dims, channels, self.out_channels, 3, padding=1)
        else:
            self.skip_connection = conv_nd(dims, channels, self.out_channels, 1)

    def forward(self, x, emb):
        return self._forward(x, emb)

    def _forward(self, x, emb):
        if self.updown:
            in_rest, in_conv = self.in_layers[:-1], self.in_layers[-1]
            h = in_conv(self.h_upd(in_rest(x)))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)
        while len(emb_out.shape) < len(h.shape):
            emb_out = emb_out[..., None]
        if self.use_scale_shift_norm:
            out_norm, out_rest = self.out_layers[0], self.out_layers[1:]
            scale, shift = torch.chunk(emb_out, 2, dim=1)
            h = out_rest(out_norm(h) * (1 + scale) + shift)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class UNetModel(nn.Module):
    """The SD UNet. forward(x, timesteps, context) predicts the noise (or v) of latent x at the given timesteps.

    `num_heads` fixes the head count (SD1: 8); `num_head_channels` fixes the head width instead (SD2, SDXL: 64).
    `attention_resolutions` lists the downsampling factors (1, 2, 4, ...) whose levels carry a transformer;
    `transformer_depth` may differ per level (SDXL: 0, 2, 10). With num_classes="sequential" the UNet also takes
    SDXL's vector `y` (adm_in_channels wide) through `label_emb`.
    """

    def __init__(self, image_size=32, in_channels=4, model_channels=320, out_channels=4, num_res_blocks=2,
                 attention_resolutions=(4, 2, 1), dropout=0.0, channel_mult=(1, 2, 4, 4), conv_resample=True, dims=2,
                 num_classes=None, use_checkpoint=False, use_fp16=False, num_heads=8, num_head_channels=-1,
                 num_heads_upsample=-1, use_scale_shift_norm=False, resblock_updown=False, use_new_attention_order=False,
                 use_spatial_transformer=True, transformer_depth=1, context_dim=768, n_embed=None, legacy=False,
                 disable_self_attentions=None, num_attention_blocks=None, disable_middle_self_attn=False,
                 use_linear_in_transformer=False, adm_in_channels=None, middle_block_attention=True,
                 transformer_depth_middle=None):
        super().__init__()
        if num_heads == -1 and num_head_channels == -1:
            raise ValueError("UNetModel needs num_heads or num_head_channels")
        self.image_size = image_size
        self.in_channels = in_channels
        self.model_channels = model_channels
        self.out_channels = out_channels
        if isinstance(num_res_blocks, int):
            num_res_blocks = len(channel_mult) * [num_res_blocks]
        self.num_res_blocks = list(num_res_blocks)
        if isinstance(transformer_depth, int):
            transformer_depth = len(channel_mult) * [transformer_depth]
        transformer_depth = list(transformer_depth)
        if transformer_depth_middle is None:
            transformer_depth_middle = transformer_depth[-1]
        self.attention_resolutions = attention_resolutions
        self.dropout = dropout
        self.channel_mult = channel_mult
        self.conv_resample = conv_resample
        self.num_classes = num_classes
        self.use_checkpoint = use_checkpoint
        self.dtype = torch.float32
        self.num_heads = num_heads
        self.num_head_channels = num_head_channels
        self.predict_codebook_ids = n_embed is not None
        self.context_dim = context_dim

        def heads_for(ch):
            if num_head_channels == -1:
                return num_heads, ch // num_heads
            heads = max(1, ch // num_head_channels)  # (a level narrower than one head gets one head)
            return heads, ch // heads

        def transformer(ch, depth):
            n_heads, d_head = heads_for(ch)
            return SpatialTransformer(ch, n_heads, d_head, depth=depth, context_dim=context_dim,
                                      use_linear=use_linear_in_transformer, use_checkpoint=use_checkpoint)

        time_embed_dim = model_channels * 4
        self.time_embed = nn.Sequential(linear(model_channels, time_embed_dim), nn.SiLU(), linear(time_embed_dim, time_embed_dim))
        if num_classes is not None:
            if num_classes != "sequential" or adm_in_channels is None:
                raise NotImplementedError("only SDXL's vector conditioning (num_classes='sequential') is supported")
            # SDXL: the pooled text embedding and size/crop embeddings (y), mapped like the timestep and added to it
            self.label_emb = nn.Sequential(nn.Sequential(linear(adm_in_channels, time_embed_dim), nn.SiLU(),
                                                         linear(time_embed_dim, time_embed_dim)))

        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(conv_nd(dims, in_channels, model_channels, 3, padding=1))])
        input_block_chans = [model_channels]
        ch = model_channels
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(self.num_res_blocks[level]):
                layers = [ResBlock(ch, time_embed_dim, dropout, out_channels=mult * model_channels, dims=dims,
                                   use_checkpoint=use_checkpoint, use_scale_shift_norm=use_scale_shift_norm)]
                ch = mult * model_channels
                if ds in attention_resolutions:
                    layers.append(transformer(ch, transformer_depth[level]))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                input_block_chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch, conv_resample, dims=dims, out_channels=ch)))
                input_block_chans.append(ch)
                ds *= 2

        middle = [ResBlock(ch, time_embed_dim, dropout, dims=dims, use_checkpoint=use_checkpoint, use_scale_shift_norm=use_scale_shift_norm)]
        if middle_block_attention:
            middle.append(transformer(ch, transformer_depth_middle))
            middle.append(ResBlock(ch, time_embed_dim, dropout, dims=dims, use_checkpoint=use_checkpoint, use_scale_shift_norm=use_scale_shift_norm))
        self.middle_block = TimestepEmbedSequential(*middle)

        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(self.num_res_blocks[level] + 1):
                skip_ch = input_block_chans.pop()
                layers = [ResBlock(ch + skip_ch, time_embed_dim, dropout, out_channels=model_channels * mult, dims=dims,
                                   use_checkpoint=use_checkpoint, use_scale_shift_norm=use_scale_shift_norm)]
                ch = model_channels * mult
                if ds in attention_resolutions:
                    layers.append(transformer(ch, transformer_depth[level]))
                if level and i == self.num_res_blocks[level]:
                    layers.append(Upsample(ch, conv_resample, dims=dims, out_channels=ch))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(normalization(ch), nn.SiLU(), conv_nd(dims, model_channels, out_channels, 3, padding=1))

    def forward(self, x, timesteps=None, context=None, y=None, **kwargs):
        if (y is not None) != (self.num_classes is not None):
            raise ValueError("this UNet takes a vector y (SDXL's size conditioning)" if self.num_classes is not None
                             else "this UNet does not take a vector y (only SDXL UNets do)")
        t_emb = timestep_embedding(timesteps, self.model_channels, repeat_only=False).to(self.time_embed[0].weight.dtype)
        emb = self.time_embed(t_emb)
        if y is not None:
            emb = emb + self.label_emb(y.to(emb.dtype))
        hs = []
        h = x.type(emb.dtype)
        if context is not None:
            context = context.type(emb.dtype)
        for module in self.input_blocks:
            h = module(h, emb, context)
            hs.append(h)
        h = self.middle_block(h, emb, context)
        for module in self.output_blocks:
            h = th.cat([h, hs.pop()], dim=1)
            h = module(h, emb, context)
        return self.out(h).type(x.dtype)
