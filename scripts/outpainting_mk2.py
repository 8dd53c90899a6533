"""Outpainting mk2 (img2img Script dropdown): grows the canvas side by side, seeds each new strip with noise shaped
like the picture, and inpaints a processing-sized strip along the seam with the original content kept."""
import math

import gradio as gr
import numpy as np
from PIL import Image

from modules import images, outpainting, processing, scripts
from modules.processing_helpers import flatten_to_rgb
from modules.shared import opts, state


def _seam_boxes(size, offset, old_size, side, margin):
    """(keep box) of the old picture on the grown canvas, shrunk by `margin` on the seam side."""
    (ox, oy), (w, h) = offset, old_size
    x1, y1, x2, y2 = ox, oy, ox + w, oy + h
    if side == "left":
        x1 += margin
    elif side == "right":
        x2 -= margin
    elif side == "up":
        y1 += margin
    else:
        y2 -= margin
    return x1, y1, max(x1, x2), max(y1, y2)



class Script(scripts.Script):
    def title(self):
        return "Outpainting mk2"

    def show(self, is_img2img):
        return is_img2img

    def ui(self, is_img2img):
        if not is_img2img:
            return None
        info = gr.HTML("<p style='margin-bottom:0.75em'>Recommended settings: Sampling Steps: 80-100, Sampler: Euler a, Denoising strength: 0.8</p>")
        pixels = gr.Slider(label="Pixels to expand", minimum=8, maximum=256, step=8, value=128, elem_id=self.elem_id("pixels"))
        mask_blur = gr.Slider(label="Mask blur", minimum=0, maximum=64, step=1, value=8, elem_id=self.elem_id("mask_blur"))
        direction = gr.CheckboxGroup(label="Outpainting direction", choices=outpainting.DIRECTIONS, value=list(outpainting.DIRECTIONS), elem_id=self.elem_id("direction"))
        noise_q = gr.Slider(label="Fall-off exponent (lower=higher detail)", minimum=0.0, maximum=4.0, step=0.01, value=1.0, elem_id=self.elem_id("noise_q"))
        color_variation = gr.Slider(label="Color variation", minimum=0.0, maximum=1.0, step=0.01, value=0.05, elem_id=self.elem_id("color_variation"))
        return [info, pixels, mask_blur, direction, noise_q, color_variation]

    def run(self, p, _, pixels, mask_blur, direction, noise_q, color_variation):
        if not p.init_images:
            raise ValueError("Outpainting mk2 needs an init image.")
        init_img = flatten_to_rgb(p.init_images[0], opts.img2img_background_color)
        left, right, up, down = outpainting.expansion(init_img.width, init_img.height, pixels, list(direction or []))
        mask_blur = int(mask_blur)
        blur_x = mask_blur if left or right else 0
        blur_y = mask_blur if up or down else 0
        processing.fix_seed(p)
        save_samples = p.save_samples() and p.outpath_samples is not None  # before the per-pass saving is turned off
        save_grid = not p.do_not_save_grid and opts.grid_save and p.outpath_grids is not None
        p.inpaint_full_res = False
        p.inpainting_fill = 1
        p.do_not_save_samples = True
        p.do_not_save_grid = True
        p.mask_blur_x = blur_x * 4
        p.mask_blur_y = blur_y * 4
        settings = dict(process_size=(p.width, p.height), blur=(blur_x, blur_y), noise_q=float(noise_q), color_variation=float(color_variation))

        batch_count, batch_size, seed = p.n_iter, p.batch_size, p.seed
        p.n_iter = 1
        sides = [(name, amount) for name, amount in zip(outpainting.DIRECTIONS, (left, right, up, down)) if amount > 0]
        state.job_count = batch_count * len(sides)
        results, first = [], None
        for i in range(batch_count):
            state.job = f"Batch {i + 1} out of {batch_count}"
            p.seed = seed + i * batch_size
            imgs = [init_img] * batch_size
            for side, amount in sides:
                imgs, proc = self.grow(p, imgs, side, amount, **settings)
                first = first or proc
            results += imgs

        all_images = list(results)
        grid = None
        if len(results) > 1 or not opts.grid_only_if_multiple:
            grid = images.image_grid(results)
            if opts.return_grid:
                all_images = [grid] + all_images
        res = processing.Processed(p, all_images, first.seed, first.info, index_of_first_image=1 if len(all_images) > len(results) else 0)
        if save_samples:
            for img in results:
                images.save_image(img, p.outpath_samples, "", res.seed, p.prompt, opts.samples_format, info=res.info, p=p)
        if grid is not None and save_grid:
            images.save_image(grid, p.outpath_grids, "grid", res.seed, p.prompt, opts.grid_format, info=res.info, short_filename=not opts.grid_extended_filename, grid=True, p=p)
        return res

    def grow(self, p, imgs, side, amount, process_size, blur, noise_q, color_variation):
        """Add `amount` pixels on `side` of every image and inpaint the seam; returns (images, Processed)."""
        horizontal = side in ("left", "right")
        margin = blur[0] if horizontal else blur[1]
        canvases, strips, strip_box, mask, latent_mask = [], [], None, None, None
        for img in imgs:
            w, h = img.size
            new_w, new_h = (w + amount, h) if horizontal else (w, h + amount)
            pad_w, pad_h = math.ceil(new_w / 64) * 64, math.ceil(new_h / 64) * 64  # processed on A1111's 64 grid
            offset = (amount if side == "left" else 0, amount if side == "up" else 0)
            canvas = Image.new("RGB", (pad_w, pad_h))
            canvas.paste(img, offset)
            picture = _seam_boxes(canvas.size, offset, img.size, side, 0)
            fill = np.asarray(outpainting.mask_with_hole(canvas.size, picture), dtype=np.float64) / 255.0  # 1 = new area
            noised = outpainting.matched_noise(np.asarray(canvas) / 255.0, fill, noise_q, color_variation)
            canvas = Image.fromarray(np.clip(noised * 255.0, 0, 255).astype(np.uint8))
            if horizontal:
                sw, sh = min(process_size[0], pad_w), pad_h
                strip_box = (0, 0, sw, sh) if side == "left" else (pad_w - sw, 0, pad_w, sh)
            else:
                sw, sh = pad_w, min(process_size[1], pad_h)
                strip_box = (0, 0, sw, sh) if side == "up" else (0, pad_h - sh, sw, pad_h)
            mask = outpainting.mask_with_hole(canvas.size, _seam_boxes(canvas.size, offset, img.size, side, margin)).crop(strip_box)
            latent_mask = outpainting.mask_with_hole(canvas.size, _seam_boxes(canvas.size, offset, img.size, side, margin * 2)).crop(strip_box)
            canvases.append((canvas, (new_w, new_h)))
            strips.append(canvas.crop(strip_box))

        p.init_images = strips
        p.image_mask = mask
        p.latent_mask = latent_mask
        p.width, p.height = strips[0].size
        proc = processing.process_images(p)
        grown = []
        for n, (canvas, size) in enumerate(canvases):
            result = proc.images[proc.index_of_first_image + n] if len(proc.images) > proc.index_of_first_image + n else proc.images[-1]
            canvas.paste(result, strip_box[:2])
            grown.append(canvas.crop((0, 0) + size))
        return grown, proc
