"""Saving images with A1111 names and infotext, reading infotext back, grids."""
import datetime
import json
import os
import types

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from modules import images, shared

INFO = 'a cat, "quoted", ünïcode\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x48'


@pytest.fixture(autouse=True)
def default_saving_options():
    keys = ["samples_filename_pattern", "save_to_dirs", "save_images_add_number", "directories_filename_pattern",
            "save_txt", "enable_pnginfo", "save_images_replace_action", "n_rows", "export_for_4chan"]
    saved = {k: getattr(shared.opts, k) for k in keys}
    yield
    for k, v in saved.items():
        setattr(shared.opts, k, v)


def picture(w=64, h=48, color=(10, 120, 200)):
    return Image.new("RGB", (w, h), color)


def test_default_names_date_folder_counter_and_seed(tmp_path):
    today = datetime.date.today().strftime("%Y-%m-%d")
    fullfn, txt = images.save_image(picture(), str(tmp_path), "", seed=1234, prompt="a cat", info=INFO)
    assert fullfn == os.path.join(str(tmp_path), today, "00000-1234.png")
    assert txt is None
    second, _ = images.save_image(picture(), str(tmp_path), "", seed=1235, prompt="a cat", info=INFO)
    assert os.path.basename(second) == "00001-1235.png"


def test_without_subfolders_the_prompt_joins_the_name(tmp_path):
    shared.opts.save_to_dirs = False
    fullfn, _ = images.save_image(picture(), str(tmp_path), "", seed=7, prompt="a cat: on/a mat?", info=INFO)
    assert os.path.basename(fullfn) == "00000-7-a cat_ on_a mat_.png"


def test_patterns_with_processing_fields(tmp_path):
    shared.opts.save_to_dirs = False
    shared.opts.samples_filename_pattern = "[seed]-[steps]-[cfg]-[width]x[height]-[prompt_words]-[unknown]"
    p = types.SimpleNamespace(steps=20, cfg_scale=7.5, batch_size=1, n_iter=1, prompt="x", negative_prompt="", styles=[])
    fullfn, _ = images.save_image(picture(), str(tmp_path), "", seed=5, prompt="Hello, big world!", info=INFO, p=p)
    assert os.path.basename(fullfn) == "00000-5-20-7.5-64x48-Hello big world-[unknown].png"


def test_no_number_and_forced_filename_and_save_txt(tmp_path):
    shared.opts.save_images_add_number = False
    shared.opts.save_txt = True
    fullfn, txt = images.save_image(picture(), str(tmp_path), "", seed=9, prompt="p", info=INFO, save_to_dirs=False)
    assert os.path.basename(fullfn) == "9.png"  # save_to_dirs setting on: the pattern defaults to [seed]
    assert open(txt, encoding="utf8").read() == INFO + "\n"
    forced, _ = images.save_image(picture(), str(tmp_path), "", info=INFO, forced_filename="mine", save_to_dirs=False)
    assert os.path.basename(forced) == "mine.png"


def test_replace_action_add_number_suffix_keeps_the_old_file(tmp_path):
    shared.opts.save_images_replace_action = "Add number suffix"
    a, _ = images.save_image(picture(), str(tmp_path), "", forced_filename="same", save_to_dirs=False)
    b, _ = images.save_image(picture(), str(tmp_path), "", forced_filename="same", save_to_dirs=False)
    assert os.path.basename(a) == "same.png" and os.path.basename(b) == "same-1.png"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


@pytest.mark.parametrize("extension", ["png", "jpg", "webp", "avif"])  # (avif was saved without it)
def test_infotext_round_trips(tmp_path, extension):
    fullfn, _ = images.save_image(picture(), str(tmp_path), "", seed=1, prompt="a", info=INFO, extension=extension)
    assert fullfn.endswith("." + extension)
    with Image.open(fullfn) as im:
        geninfo, items = images.read_info_from_image(im)
    assert geninfo == INFO
    assert "exif" not in items


def test_png_keeps_existing_chunks_and_writes_a_named_section(tmp_path):
    fullfn, _ = images.save_image(picture(), str(tmp_path), "", info="Postprocess upscale by: 2", save_to_dirs=False,
                                  pnginfo_section_name="postprocessing", existing_info={"parameters": INFO})
    with Image.open(fullfn) as im:
        assert im.info["parameters"] == INFO
        assert im.info["postprocessing"] == "Postprocess upscale by: 2"
        geninfo, items = images.read_info_from_image(im)
    assert geninfo == INFO and items["postprocessing"] == "Postprocess upscale by: 2"


def test_pnginfo_disabled_writes_no_text(tmp_path):
    shared.opts.enable_pnginfo = False
    fullfn, _ = images.save_image(picture(), str(tmp_path), "", info=INFO, save_to_dirs=False)
    with Image.open(fullfn) as im:
        assert images.read_info_from_image(im)[0] is None


def test_before_image_saved_callback_can_change_the_infotext(tmp_path):
    from modules import script_callbacks

    def change(params):
        params.pnginfo["parameters"] = "changed"
    script_callbacks.on_before_image_saved(change)
    try:
        fullfn, _ = images.save_image(picture(), str(tmp_path), "", info=INFO, save_to_dirs=False)
    finally:
        script_callbacks.callback_map["callbacks_before_image_saved"].clear()
    with Image.open(fullfn) as im:
        assert im.info["parameters"] == "changed"


def test_gif_comment_and_novelai_are_read(tmp_path):
    gif = tmp_path / "a.gif"
    picture().save(gif, comment=INFO.encode("utf8"))
    with Image.open(gif) as im:
        assert images.read_info_from_image(im)[0] == INFO

    nai = tmp_path / "nai.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "NovelAI")
    info.add_text("Description", "1girl, smile")
    info.add_text("Comment", json.dumps({"uc": "lowres", "steps": 28, "sampler": "k_euler_ancestral", "scale": 11, "seed": 99}))
    picture(512, 768).save(nai, pnginfo=info)
    with Image.open(nai) as im:
        geninfo, _ = images.read_info_from_image(im)
    assert geninfo == ("1girl, smile\nNegative prompt: lowres\nSteps: 28, Sampler: Euler a, CFG scale: 11, Seed: 99, "
                       "Size: 512x768, Clip skip: 2, ENSD: 31337")


def test_sanitize_filename_part():
    assert images.sanitize_filename_part("a b/c:d?.") == "a_b_c_d_"
    assert images.sanitize_filename_part(" lead. ", replace_spaces=False) == "lead"
    assert len(images.sanitize_filename_part("x" * 500)) == 128


def test_get_next_sequence_number(tmp_path):
    for name in ["00003-1.png", "00010-2.png", "notes.txt", "grid-0004.png"]:
        (tmp_path / name).write_bytes(b"")
    assert images.get_next_sequence_number(str(tmp_path), "") == 11
    assert images.get_next_sequence_number(str(tmp_path), "grid") == 5
    assert images.get_next_sequence_number(str(tmp_path / "missing"), "") == 0


@pytest.mark.parametrize("n,rows,expected", [(4, None, (2, 2)), (3, None, (2, 2)), (6, 1, (6, 1)), (5, 2, (3, 2))])
def test_image_grid_layout(n, rows, expected):
    shared.opts.n_rows = -1
    grid = images.image_grid([picture(32, 16)] * n, rows=rows)
    assert grid.size == (expected[0] * 32, expected[1] * 16)


def test_split_and_combine_grid_round_trip():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (100, 150, 3), dtype=np.uint8))
    grid = images.split_grid(img, tile_w=64, tile_h=64, overlap=16)
    assert isinstance(grid, images.Grid)
    assert all(tile.size == (64, 64) for _, _, row in grid.tiles for _, _, tile in row)
    assert len(grid.tiles) == 2 and len(grid.tiles[0][2]) == 3
    combined = images.combine_grid(grid)
    assert np.array_equal(np.asarray(combined), np.asarray(img))


def test_split_grid_on_an_image_smaller_than_a_tile():
    img = picture(40, 30)
    combined = images.combine_grid(images.split_grid(img, 64, 64, 8))
    assert np.array_equal(np.asarray(combined), np.asarray(img))


def test_prompt_matrix_annotations_add_margins():
    grid = images.image_grid([picture(32, 32)] * 4, rows=2)
    annotated = images.draw_prompt_matrix(grid, 32, 32, ["base", "red", "blue"])
    assert annotated.width > grid.width or annotated.height > grid.height
    with pytest.raises(ValueError, match="horizontal texts"):
        images.draw_grid_annotations(grid, 32, 32, [[images.GridAnnotation("x")]], [[], []])


def test_flatten_composites_on_background():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert images.flatten(rgba, "#ffffff").getpixel((0, 0)) == (255, 255, 255)
