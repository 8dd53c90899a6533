"""Grids: laying images out in a grid, splitting one image into overlapping tiles and blending them back,
and the text annotations of X/Y plots and prompt matrices. Re-exported by modules.images (A1111's names)."""
import math
import os
from collections import namedtuple

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from modules import script_callbacks, shared

Grid = namedtuple("Grid", ["tiles", "tile_w", "tile_h", "image_w", "image_h", "overlap"])


def image_grid(imgs, batch_size=1, rows=None):
    """Paste `imgs` into one image; rows from the `n_rows` setting (-1: about square, 0: batch size)."""
    if not imgs:
        raise ValueError("image_grid: no images to put in a grid")
    if rows is None:
        if shared.opts.n_rows > 0:
            rows = shared.opts.n_rows
        elif shared.opts.n_rows == 0:
            rows = batch_size
        elif shared.opts.grid_prevent_empty_spots:
            rows = math.floor(math.sqrt(len(imgs)))
            while len(imgs) % rows != 0:
                rows -= 1
        else:
            rows = round(math.sqrt(len(imgs)))
    rows = max(1, min(rows, len(imgs)))
    cols = math.ceil(len(imgs) / rows)

    params = script_callbacks.ImageGridLoopParams(imgs, cols, rows)
    script_callbacks.image_grid_callback(params)

    w, h = map(max, zip(*(img.size for img in params.imgs)))
    background = ImageColor.getcolor(shared.opts.grid_background_color, "RGB")
    grid = Image.new("RGB", size=(params.cols * w, params.rows * h), color=background)
    for i, img in enumerate(params.imgs):
        # smaller images are centred in their cell
        w_offset = (w - img.width) // 2
        h_offset = (h - img.height) // 2
        grid.paste(img, box=(i % params.cols * w + w_offset, i // params.cols * h + h_offset))
    return grid


def _tile_starts(length, tile, overlap):
    """Evenly spread tile positions; the last tile is flush with the far edge (negative if the image is smaller)."""
    step = tile - overlap
    if step <= 0:
        raise ValueError(f"tile overlap ({overlap}) must be smaller than the tile size ({tile})")
    count = max(1, math.ceil((length - overlap) / step))
    spacing = (length - tile) / (count - 1) if count > 1 else 0
    starts = []
    for i in range(count):
        pos = int(i * spacing)
        if pos + tile >= length:
            pos = length - tile
        starts.append(pos)
    return starts


def split_grid(image, tile_w=512, tile_h=512, overlap=64):
    """Cut `image` into tiles of tile_w x tile_h overlapping by at least `overlap` pixels."""
    w, h = image.size
    grid = Grid([], tile_w, tile_h, w, h, overlap)
    for y in _tile_starts(h, tile_h, overlap):
        row_images = []
        for x in _tile_starts(w, tile_w, overlap):
            row_images.append([x, tile_w, image.crop((x, y, x + tile_w, y + tile_h))])
        grid.tiles.append([y, tile_h, row_images])
    return grid


def _ramp(length, across, size):
    """An 'L' mask rising linearly from 0 to ~255 over `length` pixels."""
    r = (np.arange(length, dtype=np.float32) * 255 / max(length, 1)).astype(np.uint8)
    r = r.reshape((1, length)).repeat(size, axis=0) if across == "x" else r.reshape((length, 1)).repeat(size, axis=1)
    return Image.fromarray(r, "L")


def combine_grid(grid):
    """Reassemble a Grid from split_grid: each next tile fades in across the overlap, so no seam shows."""
    overlap = grid.overlap
    combined = Image.new("RGB", (grid.image_w, grid.image_h))
    for row_index, (y, h, row) in enumerate(grid.tiles):
        combined_row = Image.new("RGB", (grid.image_w, h))
        for col_index, (x, w, tile) in enumerate(row):
            # the first tile of a row is pasted whole (it may start left of 0 when the image is smaller than a tile)
            if col_index == 0 or overlap <= 0:
                combined_row.paste(tile, (x, 0))
                continue
            combined_row.paste(tile.crop((0, 0, overlap, h)), (x, 0), mask=_ramp(overlap, "x", h))
            combined_row.paste(tile.crop((overlap, 0, w, h)), (x + overlap, 0))
        if row_index == 0 or overlap <= 0:
            combined.paste(combined_row, (0, y))
            continue
        combined.paste(combined_row.crop((0, 0, combined_row.width, overlap)), (0, y), mask=_ramp(overlap, "y", grid.image_w))
        combined.paste(combined_row.crop((0, overlap, combined_row.width, h)), (0, y + overlap))
    return combined


class GridAnnotation:
    def __init__(self, text="", is_active=True):
        self.text = text
        self.is_active = is_active
        self.size = None
        self.allowed_width = None


_fallback_fonts = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf"]


def get_font(fontsize: int):
    """The `font` setting, else a system DejaVu Sans, else Pillow's built-in scalable font."""
    fontsize = max(1, int(fontsize))
    for candidate in [shared.opts.font] + _fallback_fonts:
        if candidate and (os.path.exists(candidate) or not os.path.dirname(candidate)):
            try:
                return ImageFont.truetype(candidate, fontsize)
            except Exception:
                continue
    return ImageFont.load_default(size=fontsize)


def _wrap(drawing, text, font, line_length):
    lines = [""]
    for word in text.split():
        line = f"{lines[-1]} {word}".strip()
        if drawing.textlength(line, font=font) <= line_length:
            lines[-1] = line
        else:
            lines.append(word)
    return lines


def draw_grid_annotations(im, width, height, hor_texts, ver_texts, margin=0):
    """Add column captions on top and row captions on the left of a grid of width x height cells;
    inactive texts are grey and struck through (prompt matrix)."""
    color_active = ImageColor.getcolor(shared.opts.grid_text_active_color, "RGB")
    color_inactive = ImageColor.getcolor(shared.opts.grid_text_inactive_color, "RGB")
    color_background = ImageColor.getcolor(shared.opts.grid_background_color, "RGB")

    fontsize = max(1, (width + height) // 25)
    line_spacing = fontsize // 2
    fnt = get_font(fontsize)
    pad_left = 0 if sum(sum(len(line.text) for line in lines) for lines in ver_texts) == 0 else width * 3 // 4

    cols = im.width // width
    rows = im.height // height
    if cols != len(hor_texts):
        raise ValueError(f"bad number of horizontal texts: {len(hor_texts)}; must be {cols}")
    if rows != len(ver_texts):
        raise ValueError(f"bad number of vertical texts: {len(ver_texts)}; must be {rows}")

    calc_d = ImageDraw.Draw(Image.new("RGB", (1, 1), color_background))
    for texts, allowed_width in zip(hor_texts + ver_texts, [width] * len(hor_texts) + [pad_left] * len(ver_texts)):
        items = list(texts)
        texts.clear()
        for line in items:
            texts += [GridAnnotation(x, line.is_active) for x in _wrap(calc_d, line.text, fnt, allowed_width)]
        for line in texts:
            bbox = calc_d.multiline_textbbox((0, 0), line.text, font=fnt)
            line.size = (bbox[2] - bbox[0], bbox[3] - bbox[1])
            line.allowed_width = allowed_width

    hor_text_heights = [sum(line.size[1] + line_spacing for line in lines) - line_spacing for lines in hor_texts]
    ver_text_heights = [sum(line.size[1] + line_spacing for line in lines) - line_spacing * len(lines) for lines in ver_texts]
    pad_top = 0 if sum(hor_text_heights) == 0 else max(hor_text_heights) + line_spacing * 2

    result = Image.new("RGB", (im.width + pad_left + margin * (cols - 1), im.height + pad_top + margin * (rows - 1)), color_background)
    for row in range(rows):
        for col in range(cols):
            cell = im.crop((width * col, height * row, width * (col + 1), height * (row + 1)))
            result.paste(cell, (pad_left + (width + margin) * col, pad_top + (height + margin) * row))

    d = ImageDraw.Draw(result)

    def draw_texts(draw_x, draw_y, lines):
        for line in lines:
            font, size = fnt, fontsize
            while d.multiline_textbbox((0, 0), line.text, font=font)[2] > line.allowed_width and size > 1:
                size -= 1
                font = get_font(size)
            fill = color_active if line.is_active else color_inactive
            d.multiline_text((draw_x, draw_y + line.size[1] / 2), line.text, font=font, fill=fill, anchor="mm", align="center")
            if not line.is_active:
                y_mid = draw_y + line.size[1] // 2
                d.line((draw_x - line.size[0] // 2, y_mid, draw_x + line.size[0] // 2, y_mid), fill=color_inactive, width=4)
            draw_y += line.size[1] + line_spacing

    for col in range(cols):
        draw_texts(pad_left + (width + margin) * col + width / 2, pad_top / 2 - hor_text_heights[col] / 2, hor_texts[col])
    for row in range(rows):
        draw_texts(pad_left / 2, pad_top + (height + margin) * row + height / 2 - ver_text_heights[row] / 2, ver_texts[row])
    return result


def draw_prompt_matrix(im, width, height, all_prompts, margin=0):
    """Annotate a prompt-matrix grid: the first half of the variable parts across, the rest down."""
    prompts = all_prompts[1:]
    boundary = math.ceil(len(prompts) / 2)
    prompts_horiz = prompts[:boundary]
    prompts_vert = prompts[boundary:]
    hor_texts = [[GridAnnotation(x, is_active=pos & (1 << i) != 0) for i, x in enumerate(prompts_horiz)] for pos in range(1 << len(prompts_horiz))]
    ver_texts = [[GridAnnotation(x, is_active=pos & (1 << i) != 0) for i, x in enumerate(prompts_vert)] for pos in range(1 << len(prompts_vert))]
    return draw_grid_annotations(im, width, height, hor_texts, ver_texts, margin)
