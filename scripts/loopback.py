"""Loopback (img2img Script dropdown): feeds each result back as the next init image, moving the denoising
strength from the slider's value to a final value along a curve; shows the history in a grid."""
import math

import gradio as gr

from modules import images, processing, scripts
from modules.shared import opts, state

CURVES = ["Aggressive", "Linear", "Lazy"]


def strength_at(loop, loops, initial, final, curve):
    """Denoising strength of loop `loop` (0-based): initial + (final - initial) * curve(loop / (loops - 1))."""
    if loops <= 1:
        return initial
    progress = min(loop / (loops - 1), 1.0)
    if curve == "Aggressive":
        shape = math.sin(progress * math.pi * 0.5)
    elif curve == "Lazy":
        shape = 1 - math.cos(progress * math.pi * 0.5)
    else:
        shape = progress
    return initial + (final - initial) * shape


class Script(scripts.Script):
    def title(self):
        return "Loopback"

    def show(self, is_img2img):
        return is_img2img

    def ui(self, is_img2img):
        loops = gr.Slider(minimum=1, maximum=32, step=1, label="Loops", value=4, elem_id=self.elem_id("loops"))
        final_denoising_strength = gr.Slider(minimum=0, maximum=1, step=0.01, label="Final denoising strength", value=0.5, elem_id=self.elem_id("final_denoising_strength"))
        denoising_curve = gr.Dropdown(label="Denoising strength curve", choices=CURVES, value="Linear")
        append_interrogation = gr.Dropdown(label="Append interrogated prompt at each iteration", choices=["None"], value="None",
                                           info="No interrogator is installed in this app.")
        return [loops, final_denoising_strength, denoising_curve, append_interrogation]

    def run(self, p, loops, final_denoising_strength, denoising_curve, append_interrogation="None"):
        if not p.init_images:
            raise ValueError("Loopback needs an init image.")
        loops = int(loops)
        processing.fix_seed(p)
        batch_count = p.n_iter
        p.extra_generation_params = {"Final denoising strength": final_denoising_strength, "Denoising curve": denoising_curve}
        p.batch_size = 1
        p.n_iter = 1
        p.do_not_save_grid = True
        initial_strength = p.denoising_strength
        original_images, original_fill = p.init_images, p.inpainting_fill
        color_corrections = [processing.setup_color_correction(p.init_images[0])] if opts.img2img_color_correction else None
        state.job_count = loops * batch_count

        first, history, results = None, [], []
        for n in range(batch_count):
            p.init_images = original_images
            p.denoising_strength = initial_strength
            last_image = None
            for i in range(loops):
                if color_corrections is not None:
                    p.color_corrections = color_corrections
                state.job = f"Iteration {i + 1}/{loops}, batch {n + 1}/{batch_count}"
                processed = processing.process_images(p)
                if state.interrupted or state.stopping_generation:
                    break
                first = first or processed
                p.seed = processed.seed + 1
                p.denoising_strength = strength_at(i + 1, loops, initial_strength, final_denoising_strength, denoising_curve)
                if state.skipped:
                    break
                last_image = processed.images[processed.index_of_first_image]
                p.init_images = [last_image]
                p.inpainting_fill = 1  # later loops keep what the previous one painted
                if batch_count == 1:
                    history.append(last_image)
                    results.append(last_image)
            if batch_count > 1 and last_image is not None and not state.skipped and not state.interrupted:
                history.append(last_image)
                results.append(last_image)
            p.inpainting_fill = original_fill
            if state.interrupted or state.stopping_generation:
                break

        seed, info = (first.seed, first.info) if first is not None else (p.seed, "")
        grids = []
        if len(history) > 1:
            grid = images.image_grid(history, rows=1)
            if opts.grid_save and p.outpath_grids is not None:
                images.save_image(grid, p.outpath_grids, "grid", seed, p.prompt, opts.grid_format, info=info, short_filename=not opts.grid_extended_filename, grid=True, p=p)
            if opts.return_grid:
                grids.append(grid)
        return processing.Processed(p, grids + results, seed, info, index_of_first_image=len(grids))
