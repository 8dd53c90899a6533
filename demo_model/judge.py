"""An analytic judge of shape pictures: what colour, what shape, where, on what background.

No learned model: the background is the median colour of the image border, shapes are the connected regions that
differ from it, a shape's colour is the palette colour nearest its pixels' median, its class is the template
(circle, square, triangle, star stretched over the region's bounding box) that overlaps it best, and its position
is the third of the image its centroid falls in, across and down.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from demo_model.shapes_data import COLOURS, POSITIONS, SHAPES, shape_polygon

_PALETTE_NAMES = list(COLOURS)
_PALETTE = np.asarray([COLOURS[n] for n in _PALETTE_NAMES], dtype=np.float32)

# A pixel this far (RGB distance) from the background may belong to a shape; smaller regions are noise.
FOREGROUND_DISTANCE = 45.0
MIN_AREA_FRACTION = 0.004


@dataclasses.dataclass
class DetectedShape:
    colour: str
    shape: str
    position: str
    centroid: tuple  # (x, y) as fractions of width and height
    area: float  # fraction of the image
    shape_score: float  # IoU with the best template


@dataclasses.dataclass
class Judgement:
    background: str
    shapes: list  # DetectedShape, largest first

    @property
    def main(self):
        return self.shapes[0] if self.shapes else None


def to_array(image) -> np.ndarray:
    """PIL image or uint8 array -> float32 HxWx3."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image: expected an RGB picture (H, W, 3), got shape {array.shape}")
    return array.astype(np.float32)


def nearest_colour(rgb, palette: dict | None = None) -> str:
    """The palette colour nearest `rgb`: COLOURS, or the given {name: rgb} (the demo LoRA's adds a colour)."""
    names, values = (_PALETTE_NAMES, _PALETTE) if palette is None else \
        (list(palette), np.asarray(list(palette.values()), dtype=np.float32))
    distances = np.linalg.norm(values - np.asarray(rgb, dtype=np.float32)[None], axis=1)
    return names[int(np.argmin(distances))]


def colour_map(image) -> np.ndarray:
    """Per pixel, the index into COLOURS of the nearest palette colour."""
    array = to_array(image)
    distances = np.linalg.norm(array[:, :, None, :] - _PALETTE[None, None], axis=-1)
    return np.argmin(distances, axis=-1)


def colour_share(image, colour: str) -> float:
    """Fraction of the picture's pixels whose nearest palette colour is `colour`."""
    if colour not in COLOURS:
        raise ValueError(f"colour: unknown colour {colour!r}; expected one of {_PALETTE_NAMES}")
    return float((colour_map(image) == _PALETTE_NAMES.index(colour)).mean())


def position_name(x: float, y: float) -> str:
    """Grid cell of a point given as fractions of width and height."""
    column = min(int(x * 3), 2)
    row = min(int(y * 3), 2)
    return POSITIONS[row * 3 + column]


@functools.lru_cache(maxsize=4096)
def _template(shape: str, width: int, height: int) -> np.ndarray:
    """Boolean mask of `shape` stretched over a width x height box."""
    k = 4
    canvas = Image.new("L", (width * k, height * k), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse([0, 0, width * k - 1, height * k - 1], fill=255)
    else:
        points = np.asarray(shape_polygon(shape, 0.0, 0.0, 1.0))
        low, high = points.min(axis=0), points.max(axis=0)
        scaled = (points - low) / (high - low) * [width * k - 1, height * k - 1]
        draw.polygon([tuple(p) for p in scaled], fill=255)
    return np.asarray(canvas.resize((width, height), Image.BOX)) >= 128


def classify_shape(mask: np.ndarray) -> tuple:
    """(shape name, IoU) of the template best matching a boolean mask cropped to its bounding box."""
    height, width = mask.shape
    best = (SHAPES[0], -1.0)
    for shape in SHAPES:
        template = _template(shape, width, height)
        iou = float((template & mask).sum() / max((template | mask).sum(), 1))
        if iou > best[1]:
            best = (shape, iou)
    return best


def judge(image, palette: dict | None = None) -> Judgement:
    """What the picture shows; colours are named from `palette` (default COLOURS)."""
    array = to_array(image)
    height, width, _ = array.shape
    border = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    background_rgb = np.median(border, axis=0)
    distance = np.linalg.norm(array - background_rgb, axis=-1)

    labels, count = ndimage.label(distance > FOREGROUND_DISTANCE)
    shapes = []
    for index in range(1, count + 1):
        region = labels == index
        if region.sum() < MIN_AREA_FRACTION * height * width:
            continue
        # The shape's colour from its inner pixels (edges blend with the background).
        inner = distance[region] >= np.percentile(distance[region], 50)
        rgb = np.median(array[region][inner], axis=0)
        # The outline sits where a pixel is half-way between background and shape colour.
        grown = ndimage.binary_dilation(region, iterations=2)
        mask = grown & (distance > 0.5 * float(np.linalg.norm(rgb - background_rgb)))
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        shape, score = classify_shape(crop)
        cx, cy = (xs.mean() + 0.5) / width, (ys.mean() + 0.5) / height
        shapes.append(DetectedShape(nearest_colour(rgb, palette), shape, position_name(cx, cy), (cx, cy),
                                    float(mask.sum()) / (height * width), score))
    shapes.sort(key=lambda s: s.area, reverse=True)
    return Judgement(nearest_colour(background_rgb, palette), shapes)
