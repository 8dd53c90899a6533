"""Captioned pictures of flat shapes: the demo checkpoint's training data and its evaluation set.

A scene is one or two shapes (colour, kind, size, position on a 3x3 grid) on a plain background. Captions word the
same scene many ways ("a small blue square at the top left on a yellow background", "blue square, upper left,
yellow background", ...) and sometimes leave attributes out, so prompts typed in a user's own words work and a lone
word such as "red" (a negative prompt) means something. HELD_OUT_COMBOS never appear in training data.
"""
from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
from PIL import Image, ImageDraw

# Palette: far apart in RGB so the judge can name a colour even when the model's rendering drifts a little.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (245, 220, 40),
    "green": (35, 160, 60),
    "blue": (35, 75, 215),
    "purple": (130, 45, 175),
    "pink": (250, 145, 200),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLOUR_NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle", "star"]
# 3x3 grid, row-major; the canonical names the judge returns.
POSITIONS = ["top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right"]
SIZES = ["small", "large"]

# Centre of each grid cell as a fraction of the image side, and the half-extent of shapes per size class.
CELL_CENTRES = (0.22, 0.5, 0.78)
JITTER = 0.03
SIZE_RADII = {"small": (0.12, 0.145), "large": (0.18, 0.21)}
# A shape must stand out from its background: pairs closer than this are never drawn.
MIN_CONTRAST = 130.0


def colour_distance(a, b) -> float:
    return float(math.dist(COLOURS[a] if isinstance(a, str) else a, COLOURS[b] if isinstance(b, str) else b))


def _held_out() -> frozenset:
    """One colour/shape/position combination in nine: every colour, shape and position still appears in training,
    each pair of them too, only the triple is new at evaluation."""
    combos = set()
    for ci, c in enumerate(COLOUR_NAMES):
        for si, s in enumerate(SHAPES):
            for pi, p in enumerate(POSITIONS):
                if (ci + 2 * si + 4 * pi) % 9 == 0:
                    combos.add((c, s, p))
    return frozenset(combos)


HELD_OUT_COMBOS = _held_out()


@dataclasses.dataclass
class ShapeObject:
    shape: str
    colour: str
    position: str
    size: str
    cx: float  # centre, fractions of the image side
    cy: float
    radius: float  # half-extent, fraction of the image side


@dataclasses.dataclass
class Scene:
    objects: list
    background: str


def position_centre(position: str) -> tuple[float, float]:
    index = POSITIONS.index(position)
    return CELL_CENTRES[index % 3], CELL_CENTRES[index // 3]


def make_object(rng: random.Random, shape: str, colour: str, position: str, size: str) -> ShapeObject:
    cx, cy = position_centre(position)
    lo, hi = SIZE_RADII[size]
    radius = rng.uniform(lo, hi)
    cx = min(max(cx + rng.uniform(-JITTER, JITTER), radius + 0.02), 0.98 - radius)
    cy = min(max(cy + rng.uniform(-JITTER, JITTER), radius + 0.02), 0.98 - radius)
    return ShapeObject(shape, colour, position, size, cx, cy, radius)


def contrasting_backgrounds(colours) -> list:
    return [b for b in COLOUR_NAMES if all(colour_distance(b, c) >= MIN_CONTRAST for c in colours)]


def sample_scene(rng: random.Random, two_object_chance: float = 0.2, held_out: bool = False) -> Scene:
    """A random scene; held_out=False never draws a HELD_OUT_COMBOS object, held_out=True draws one single object
    from them."""
    if held_out:
        colour, shape, position = sorted(HELD_OUT_COMBOS)[rng.randrange(len(HELD_OUT_COMBOS))]
        obj = make_object(rng, shape, colour, position, rng.choice(SIZES))
        return Scene([obj], rng.choice(contrasting_backgrounds([colour])))

    count = 2 if rng.random() < two_object_chance else 1
    while True:
        objects = []
        for _ in range(count):
            while True:
                combo = (rng.choice(COLOUR_NAMES), rng.choice(SHAPES), rng.choice(POSITIONS))
                if combo not in HELD_OUT_COMBOS:
                    break
            objects.append(make_object(rng, combo[1], combo[0], combo[2], rng.choice(SIZES)))
        if count == 2:
            a, b = objects
            # Bounding boxes (half-side at most 1.1 radius) kept apart, so two shapes never touch.
            gap = (a.radius + b.radius) * 1.1 + 0.04
            apart = abs(a.cx - b.cx) > gap or abs(a.cy - b.cy) > gap
            if a.position == b.position or not apart or colour_distance(a.colour, b.colour) < MIN_CONTRAST / 2:
                continue
        backgrounds = contrasting_backgrounds([o.colour for o in objects])
        if backgrounds:
            return Scene(objects, rng.choice(backgrounds))


def shape_polygon(shape: str, cx: float, cy: float, r: float) -> list:
    """Outline points (in the units of cx, cy, r) of the non-circle shapes, upright."""
    if shape == "square":
        s = r * 0.88
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        # Equilateral, apex up, centred on its bounding box so positions read the same as other shapes.
        h = r * 1.8
        return [(cx, cy - h / 2), (cx + r, cy + h / 2), (cx - r, cy + h / 2)]
    if shape == "star":
        outer, inner = r * 1.08, r * 1.08 * 0.45
        points = []
        for i in range(10):
            angle = -math.pi / 2 + i * math.pi / 5
            radius = outer if i % 2 == 0 else inner
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle) + r * 0.08))
        return points
    raise ValueError(f"shape: unknown shape {shape!r}; expected one of {SHAPES}")


def draw_shape_mask(shape: str, cx: float, cy: float, r: float, size: int, supersample: int = 4) -> np.ndarray:
    """Anti-aliased coverage (float32 0..1, size x size) of one shape; cx, cy, r in pixels of the final image."""
    big = size * supersample
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    k = supersample
    if shape == "circle":
        draw.ellipse([(cx - r) * k, (cy - r) * k, (cx + r) * k, (cy + r) * k], fill=255)
    else:
        draw.polygon([(x * k, y * k) for x, y in shape_polygon(shape, cx, cy, r)], fill=255)
    small = canvas.resize((size, size), Image.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def render_scene(scene: Scene, size: int = 64, palette: dict = COLOURS) -> np.ndarray:
    """The scene as an RGB uint8 array (size, size, 3); `palette` names the colours (the demo LoRA adds one)."""
    image = np.empty((size, size, 3), dtype=np.float32)
    image[:] = palette[scene.background]
    for obj in scene.objects:
        mask = draw_shape_mask(obj.shape, obj.cx * size, obj.cy * size, obj.radius * size, size)[..., None]
        image = image * (1 - mask) + np.asarray(palette[obj.colour], dtype=np.float32) * mask
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# ---- captions ----

SIZE_WORDS = {"small": ["small", "little", "tiny", "small"], "large": ["large", "big", "large", "big"]}
CENTRE_WORDS = ["centre", "center", "middle"]
POSITION_PHRASES = {
    # (phrase used after the object, bare phrase for comma lists)
    "top left": ["at the top left", "in the top left", "in the top left corner", "in the upper left",
                 "at the top-left", "in the upper left corner", "top left"],
    "top right": ["at the top right", "in the top right", "in the top right corner", "in the upper right",
                  "at the top-right", "in the upper right corner", "top right"],
    "bottom left": ["at the bottom left", "in the bottom left", "in the bottom left corner", "in the lower left",
                    "at the bottom-left", "in the lower left corner", "bottom left"],
    "bottom right": ["at the bottom right", "in the bottom right", "in the bottom right corner",
                     "in the lower right", "at the bottom-right", "in the lower right corner", "bottom right"],
    "top": ["at the top", "at the top {c}", "near the top", "at the top of the image", "top {c}", "at the top"],
    "bottom": ["at the bottom", "at the bottom {c}", "near the bottom", "at the bottom of the image",
               "bottom {c}", "at the bottom"],
    "left": ["on the left", "at the left", "on the left side", "to the left", "left", "at the {c} left"],
    "right": ["on the right", "at the right", "on the right side", "to the right", "right", "at the {c} right"],
    "centre": ["in the {c}", "at the {c}", "in the {c}", "{c}", "centred", "centered", "in the {c} of the image"],
}
BACKGROUND_PHRASES = ["on a {b} background", "on a {b} background", "{b} background", "on {b}",
                      "against a {b} background", "with a {b} background", "on a plain {b} background",
                      "{b} backdrop"]
PREFIXES = ["", "", "", "", "a picture of ", "an image of ", "a drawing of ", "a photo of ", "an illustration of "]
GENERIC_SHAPE_WORDS = ["shape", "object", "thing"]


def _article(words: str) -> str:
    return "an" if words[:1] in "aeiou" else "a"


def position_phrase(rng: random.Random, position: str) -> str:
    return rng.choice(POSITION_PHRASES[position]).replace("{c}", rng.choice(CENTRE_WORDS))


def object_phrase(rng: random.Random, obj: ShapeObject, with_size: bool, with_colour: bool, with_shape: bool,
                  article: bool) -> str:
    words = []
    if with_size:
        words.append(rng.choice(SIZE_WORDS[obj.size]))
    if with_colour:
        words.append(obj.colour)
    words.append(obj.shape if with_shape else rng.choice(GENERIC_SHAPE_WORDS))
    text = " ".join(words)
    return f"{_article(text)} {text}" if article else text


def caption_scene(rng: random.Random, scene: Scene) -> str:
    """One of many wordings of the scene; attributes are sometimes left out (the picture still has them)."""
    if rng.random() < 0.05:
        return _fragment_caption(rng, scene)

    article = rng.random() < 0.7
    with_position = rng.random() < 0.85
    with_background = rng.random() < 0.7
    parts = []
    for obj in scene.objects:
        with_colour = rng.random() < 0.9
        with_shape = rng.random() < 0.93 or not with_colour
        phrase = object_phrase(rng, obj, rng.random() < 0.6, with_colour, with_shape, article)
        parts.append((phrase, position_phrase(rng, obj.position) if with_position else ""))
    background = rng.choice(BACKGROUND_PHRASES).format(b=scene.background) if with_background else ""

    style = rng.randrange(4)
    if style == 0:  # "a small blue square at the top left on a yellow background"
        objects = " and ".join(f"{o} {p}".strip() for o, p in parts)
        text = f"{objects} {background}".strip()
    elif style == 1:  # "small blue square, top left, yellow background"
        pieces = []
        for o, p in parts:
            pieces += [o, p.replace("at the ", "").replace("in the ", "").replace("on the ", "")]
        pieces.append(background.replace("on a ", "").replace("on ", "").replace("with a ", ""))
        text = ", ".join(x for x in pieces if x)
    elif style == 2:  # "a yellow background with a small blue square in the top left corner"
        objects = " and ".join(f"{o} {p}".strip() for o, p in parts)
        if with_background:
            text = f"{_article(scene.background)} {scene.background} background with {objects}"
        else:
            text = objects
    else:  # "in the top left, a small blue square on a yellow background"
        if len(parts) == 1 and parts[0][1]:
            o, p = parts[0]
            text = f"{p}, {o} {background}".strip()
        else:
            objects = ", ".join(f"{o} {p}".strip() for o, p in parts)
            text = f"{background}, {objects}" if background else objects
    prefix = rng.choice(PREFIXES) if style != 3 else ""
    return (prefix + text).strip()


def _fragment_caption(rng: random.Random, scene: Scene) -> str:
    """A lone attribute ("red", "circle", "on the left", "white background"): what a negative prompt looks like."""
    obj = rng.choice(scene.objects)
    kind = rng.randrange(4)
    if kind == 0:
        return obj.colour
    if kind == 1:
        return obj.shape
    if kind == 2:
        return position_phrase(rng, obj.position)
    return rng.choice(BACKGROUND_PHRASES).format(b=scene.background)


def canonical_caption(obj: ShapeObject | None = None, *, colour=None, shape=None, position=None, size=None,
                      background=None) -> str:
    """The plain wording used for evaluation prompts: "a small red circle at the top left on a white background"."""
    if obj is not None:
        colour, shape, position, size = obj.colour, obj.shape, obj.position, obj.size
    words = " ".join(w for w in (size, colour, shape) if w)
    text = f"{_article(words)} {words}"
    if position:
        text += " " + POSITION_PHRASES[position][0].replace("{c}", "centre")
    if background:
        text += f" on a {background} background"
    return text


def make_dataset(count: int, seed: int, size: int = 64, two_object_chance: float = 0.2):
    """count training scenes and their images (uint8, N x size x size x 3), reproducible from seed."""
    rng = random.Random(seed)
    scenes = [sample_scene(rng, two_object_chance) for _ in range(count)]
    images = np.stack([render_scene(s, size) for s in scenes])
    return scenes, images


def evaluation_scenes(per_combo: int, seed: int = 1234) -> list:
    """per_combo single-object scenes for every held-out combination, in a fixed order."""
    rng = random.Random(seed)
    scenes = []
    for colour, shape, position in sorted(HELD_OUT_COMBOS):
        for _ in range(per_combo):
            obj = make_object(rng, shape, colour, position, rng.choice(SIZES))
            scenes.append(Scene([obj], rng.choice(contrasting_backgrounds([colour]))))
    return scenes
