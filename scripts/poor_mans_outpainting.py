"""Poor man's outpainting (img2img Script dropdown): grows the canvas, cuts it into processing-sized tiles and
inpaints only the tiles that reach into the new area; the original pixels are kept exactly."""
import gradio as gr
from PIL import Image

from modules import images, outpainting, processing, scripts
from modules.processing_helpers import flatten_to_rgb
from modules.processing_img2img import INPAINTING_FILL_NAMES
from modules.shared import opts, state



class Script(scripts.Script):
    def title(self):
        return "Poor man's outpainting"

    def show(self, is_img2img):
        return is_img2img

    def ui(self, is_img2img):
        if not is_img2img:
            return None
        pixels = gr.Slider(label="Pixels to expand", minimum=8, maximum=256, step=8, value=128, elem_id=self.elem_id("pixels"))
        mask_blur = gr.Slider(label="Mask blur", minimum=0, maximum=64, step=1, value=4, elem_id=self.elem_id("mask_blur"))
        inpainting_fill = gr.Radio(label="Masked content", choices=INPAINTING_FILL_NAMES, value=INPAINTING_FILL_NAMES[0], type="index", elem_id=self.elem_id("inpainting_fill"))
        direction = gr.CheckboxGroup(label="Outpainting direction", choices=outpainting.DIRECTIONS, value=list(outpainting.DIRECTIONS), elem_id=self.elem_id("direction"))
        return [pixels, mask_blur, inpainting_fill, direction]

    def run(self, p, pixels, mask_blur, inpainting_fill, direction):
        if not p.init_images:
            raise ValueError("Poor man's outpainting needs an init image.")
        init_img = flatten_to_rgb(p.init_images[0], opts.img2img_background_color)
        left, right, up, down = outpainting.expansion(init_img.width, init_img.height, pixels, list(direction or []))
        mask_blur = int(mask_blur)
        processing.fix_seed(p)
        save_samples = p.save_samples() and p.outpath_samples is not None  # before the per-pass saving is turned off
        save_grid = not p.do_not_save_grid and opts.grid_save and p.outpath_grids is not None
        p.inpaint_full_res = False
        p.inpainting_fill = inpainting_fill
        p.mask_blur = mask_blur * 2
        p.n_iter = 1
        p.batch_size = 1
        p.do_not_save_grid = True
        p.do_not_save_samples = True

        canvas = Image.new("RGB", (init_img.width + left + right, init_img.height + up + down))
        canvas.paste(init_img, (left, up))
        picture = (left, up, left + init_img.width, up + init_img.height)

        def keep_box(margin):
            return (picture[0] + (margin if left else 0), picture[1] + (margin if up else 0),
                    picture[2] - (margin if right else 0), picture[3] - (margin if down else 0))

        mask = outpainting.mask_with_hole(canvas.size, keep_box(mask_blur * 2))
        latent_mask = outpainting.mask_with_hole(canvas.size, keep_box(mask_blur // 2))
        overlap = min(int(pixels), p.width - 8, p.height - 8)
        grid = images.split_grid(canvas, tile_w=p.width, tile_h=p.height, overlap=overlap)
        grid_mask = images.split_grid(mask, tile_w=p.width, tile_h=p.height, overlap=overlap)
        grid_latent = images.split_grid(latent_mask, tile_w=p.width, tile_h=p.height, overlap=overlap)

        def inside_picture(x, y, w, h):
            return x >= left and x + w <= canvas.width - right and y >= up and y + h <= canvas.height - down

        work = []
        for (y, h, row), (_, _, row_mask), (_, _, row_latent) in zip(grid.tiles, grid_mask.tiles, grid_latent.tiles):
            for tile, tile_mask, tile_latent in zip(row, row_mask, row_latent):
                if not inside_picture(tile[0], y, tile[1], h):
                    work.append((tile, tile_mask[2], tile_latent[2]))

        state.job_count = len(work)
        first = None
        for i, (tile, tile_mask, tile_latent) in enumerate(work):
            state.job = f"Batch {i + 1} out of {len(work)}"
            if state.interrupted:
                break
            p.init_images = [tile[2]]
            p.image_mask = tile_mask
            p.latent_mask = tile_latent
            processed = processing.process_images(p)
            first = first or processed
            p.seed = processed.seed + 1
            tile[2] = processed.images[processed.index_of_first_image]

        combined = images.combine_grid(grid)
        combined.paste(init_img.crop((keep_box(mask_blur * 2)[0] - left, keep_box(mask_blur * 2)[1] - up,
                                      keep_box(mask_blur * 2)[2] - left, keep_box(mask_blur * 2)[3] - up)),
                       keep_box(mask_blur * 2)[:2])  # the tiles' feathered seams never touch the kept picture
        seed, info = (first.seed, first.info) if first is not None else (p.seed, "")
        if save_samples:
            images.save_image(combined, p.outpath_samples, "", seed, p.prompt, opts.samples_format, info=info, p=p)
        return processing.Processed(p, [combined], seed, info)
