"""Running an image model over a picture in overlapping tiles (A1111: modules.upscaler_utils).

Tiles are blended with weights that are zero in the outer quarter of each overlap next to a tile's inner edge and
ramp up linearly across the middle: the pixels a tile computes from its zero-padded border never show, and the
hand-over between tiles is smooth, so no seam appears. For a model whose output depends only on pixels within
overlap/4, tiled and untiled results are the same.
"""
import math

import numpy as np
import torch
from PIL import Image

from modules import devices, shared
from modules.upscaler import UpscalerError


# --- conversions -----------------------------------------------------------------------------------------------------

def pil_image_to_tensor(img: Image.Image, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """PIL image -> (1, 3, H, W) RGB tensor in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).to(device=device, dtype=dtype)


def tensor_to_pil_image(tensor: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> RGB PIL image."""
    if tensor.ndim == 4:
        tensor = tensor[0]
    arr = (tensor.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def pil_image_to_torch_bgr(img: Image.Image) -> torch.Tensor:
    """A1111 name: (3, H, W) float BGR tensor in [0, 1]."""
    arr = np.asarray(img.convert("RGB"))[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(np.transpose(arr, (2, 0, 1))) / 255)


def torch_bgr_to_pil_image(tensor: torch.Tensor) -> Image.Image:
    """A1111 name: (1, 3, H, W) or (3, H, W) BGR tensor in [0, 1] -> RGB PIL image."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"{tensor.shape} does not describe a BCHW tensor with one image")
        tensor = tensor.squeeze(0)
    arr = tensor.float().cpu().clamp_(0, 1).numpy()
    arr = (255.0 * np.moveaxis(arr, 0, 2)).round().astype(np.uint8)[:, :, ::-1]
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def upscale_pil_patch(model, img: Image.Image) -> Image.Image:
    """A1111 name: run the model once over the whole image, BGR in and out."""
    param = _model_param(model)
    with torch.inference_mode():
        tensor = pil_image_to_torch_bgr(img).unsqueeze(0).to(device=param.device, dtype=param.dtype)
        return torch_bgr_to_pil_image(model(tensor))


# --- model facts -----------------------------------------------------------------------------------------------------

def _model_param(model):
    module = getattr(model, "model", model)
    try:
        return next(module.parameters())
    except (StopIteration, AttributeError, TypeError):
        return torch.zeros((), device=devices.cpu)


def _model_features(model):
    module = getattr(model, "model", model)
    if isinstance(module, torch.nn.Module):
        for m in module.modules():
            if isinstance(m, torch.nn.Conv2d):
                return m.out_channels
    return 64


def _free_bytes(device):
    import psutil
    ram = psutil.virtual_memory().available
    if device.type == "cuda":
        try:
            free, _total = torch.cuda.mem_get_info(device)
            return ram, free
        except Exception:
            return ram, ram
    return ram, ram


def _gb(n):
    return f"{n / 1024 ** 3:.1f} GB"


def check_memory(model, width, height, tile_size, scale=None):
    """Refuse, before running, an upscale whose result or one model pass would not fit in free memory."""
    param = _model_param(model)
    scale = scale or getattr(model, "scale", 4) or 4
    out_px = width * height * scale * scale
    # float32 RGB sum + float32 weight + uint8 result + PIL copy
    ram_needed = out_px * (16 + 4 + 3 + 3)
    pass_w, pass_h = (min(width, tile_size), min(height, tile_size)) if tile_size > 0 else (width, height)
    pass_px = pass_w * pass_h
    elem = param.element_size()
    features = _model_features(model)
    # rough peak activations of one pass: a few feature maps at input size, two at output size
    pass_needed = pass_px * elem * features * (12 + 2 * scale * scale)
    ram_free, device_free = _free_bytes(param.device)
    if param.device.type != "cuda":
        pass_needed += ram_needed
        device_free = ram_free
    if ram_needed > ram_free:
        raise UpscalerError(
            f"Upscaling a {width}x{height} image by {scale} gives {width * scale}x{height * scale} pixels and would need "
            f"about {_gb(ram_needed)} of memory; only {_gb(ram_free)} is free. Use a smaller image or a smaller scale.")
    if pass_needed > device_free:
        hint = "Lower the tile size in Settings > Upscaling." if tile_size > 0 else "Set a tile size in Settings > Upscaling (0 means no tiling)."
        raise UpscalerError(
            f"Running the upscaler on a {pass_w}x{pass_h} {'tile' if tile_size > 0 else 'image'} would need about "
            f"{_gb(pass_needed)} of {param.device.type} memory; only {_gb(device_free)} is free. {hint}")


# --- tiling ---------------------------------------------------------------------------------------------------------

def tile_starts(length, tile, overlap):
    """Start positions of tiles of `tile` pixels covering `length`, at least `overlap` apart, evenly spread with the
    last one flush with the end. A tile never exceeds the image: a short side gets one tile of its full length."""
    if length <= tile:
        return [0]
    step = tile - overlap
    if step <= 0:
        raise UpscalerError(f"tile overlap ({overlap}) must be smaller than the tile size ({tile})")
    count = math.ceil((length - overlap) / step)
    if count <= 1:
        return [0]
    spacing = (length - tile) / (count - 1)
    return [min(int(round(i * spacing)), length - tile) for i in range(count)]


def _edge_weights(n, inner_start, inner_end, overlap):
    """1-D blend weights of a tile n pixels long; edges that touch another tile fade in, image borders do not."""
    w = torch.ones(n)
    if overlap <= 0:
        return w
    margin = overlap // 4
    ramp = torch.clamp((torch.arange(n, dtype=torch.float32) - margin + 1) / (overlap - 2 * margin + 1), 0, 1)
    if inner_start:
        w = torch.minimum(w, ramp)
    if inner_end:
        w = torch.minimum(w, ramp.flip(0))
    return w


def _run(model, tensor):
    with torch.inference_mode(), devices.without_autocast():
        out = model(tensor)
    if not isinstance(out, torch.Tensor):
        raise UpscalerError(f"the upscaler model returned {type(out).__name__}, not an image tensor")
    return out


def tiled_upscale_tensor(model, tensor: torch.Tensor, tile_size: int, tile_overlap: int, desc="tiled upscale"):
    """Upscale a (1, C, H, W) tensor with `model` in tiles; returns the (1, C, H*s, W*s) result on the CPU in float32."""
    _, _, h, w = tensor.shape
    if tile_size <= 0 or (h <= tile_size and w <= tile_size):
        return _run(model, tensor).float().cpu()

    tile_overlap = max(0, min(int(tile_overlap), tile_size - 1))
    ys = tile_starts(h, tile_size, tile_overlap)
    xs = tile_starts(w, tile_size, tile_overlap)
    tile_h, tile_w = min(tile_size, h), min(tile_size, w)

    result = weights = None
    scale = None
    progress = _progress(len(ys) * len(xs), desc)
    for iy, y in enumerate(ys):
        wy = _edge_weights(tile_h, iy > 0, iy < len(ys) - 1, tile_overlap)
        for ix, x in enumerate(xs):
            out = _run(model, tensor[:, :, y:y + tile_h, x:x + tile_w]).float().cpu()
            if scale is None:
                scale = out.shape[-1] // tile_w
                if scale < 1 or out.shape[-1] != tile_w * scale or out.shape[-2] != tile_h * scale:
                    raise UpscalerError(f"the upscaler turned a {tile_w}x{tile_h} tile into {out.shape[-1]}x{out.shape[-2]}, not a whole multiple")
                result = torch.zeros((1, out.shape[1], h * scale, w * scale))
                weights = torch.zeros((1, 1, h * scale, w * scale))
            wx = _edge_weights(tile_w, ix > 0, ix < len(xs) - 1, tile_overlap)
            weight = torch.outer(wy, wx).repeat_interleave(scale, 0).repeat_interleave(scale, 1)[None, None]
            result[:, :, y * scale:(y + tile_h) * scale, x * scale:(x + tile_w) * scale] += out * weight
            weights[:, :, y * scale:(y + tile_h) * scale, x * scale:(x + tile_w) * scale] += weight
            progress.update(1)
    progress.close()
    return result / weights.clamp_min(1e-8)


class _NoProgress:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total, desc):
    if total <= 1 or not shared.opts.enable_upscale_progressbar or shared.cmd_opts.disable_console_progressbars:
        return _NoProgress()
    try:
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit="tile")
    except ImportError:
        return _NoProgress()


def upscale_with_model(model, img: Image.Image, tile_size: int = 0, tile_overlap: int = 0, desc="tiled upscale") -> Image.Image:
    """Upscale a PIL image with a model (a spandrel descriptor or any module mapping (1,3,H,W) RGB [0,1] to the
    same at a larger size), in tiles of `tile_size` pixels (0 = whole image) overlapping by `tile_overlap`."""
    if img.width < 1 or img.height < 1:
        raise UpscalerError(f"cannot upscale an empty {img.width}x{img.height} image")
    check_memory(model, img.width, img.height, int(tile_size or 0), getattr(model, "scale", None))
    param = _model_param(model)
    tensor = pil_image_to_tensor(img, dtype=param.dtype, device=param.device)
    out = tiled_upscale_tensor(model, tensor, int(tile_size or 0), int(tile_overlap or 0), desc=desc)
    return tensor_to_pil_image(out)


def upscale_2(img: Image.Image, model, *, tile_size: int, tile_overlap: int, scale: int, desc: str):
    """A1111 name used by SwinIR/ScuNET-style upscalers; the same tiling as upscale_with_model."""
    check_memory(model, img.width, img.height, int(tile_size or 0), scale)
    param = _model_param(model)
    tensor = pil_image_to_tensor(img, dtype=param.dtype, device=param.device)
    return tensor_to_pil_image(tiled_upscale_tensor(model, tensor, int(tile_size or 0), int(tile_overlap or 0), desc=desc))


def tiled_upscale_2(img: torch.Tensor, model, *, tile_size: int, tile_overlap: int, scale: int, device, desc="Tiled upscale"):
    """A1111 name: tensor in, tensor out (on `device`)."""
    return tiled_upscale_tensor(model, img, int(tile_size or 0), int(tile_overlap or 0), desc=desc).to(device)
