"""img2img script "SD upscale": upscale the image, then re-diffuse it in overlapping tiles of the img2img size and
blend them back together (A1111's script of the same name; API args ["", overlap, upscaler name or index, scale])."""
import math

from PIL import Image

from modules import devices, images, processing, scripts, shared
from modules.processing import Processed
from modules.shared import opts, state


def resolve_upscaler(upscaler_index):
    """An index into shared.sd_upscalers or an upscaler name (case-insensitive) -> the UpscalerData."""
    if isinstance(upscaler_index, str):
        names = [x.name.lower() for x in shared.sd_upscalers]
        if upscaler_index.lower() not in names:
            raise ValueError(f"SD upscale: no upscaler named {upscaler_index!r}; available: {', '.join(x.name for x in shared.sd_upscalers)}")
        upscaler_index = names.index(upscaler_index.lower())
    upscaler_index = int(upscaler_index or 0)
    if not 0 <= upscaler_index < len(shared.sd_upscalers):
        raise ValueError(f"SD upscale: upscaler index {upscaler_index} out of range (0..{len(shared.sd_upscalers) - 1})")
    return shared.sd_upscalers[upscaler_index]


class Script(scripts.Script):
    def title(self):
        return "SD upscale"

    def show(self, is_img2img):
        return is_img2img

    def ui(self, is_img2img):
        import gradio as gr

        names = [x.name for x in shared.sd_upscalers] or ["None"]
        info = gr.HTML("<p style=\"margin-bottom:0.75em\">Will upscale the image by the selected scale factor; use width and height sliders to set tile size</p>")
        overlap = gr.Slider(minimum=0, maximum=256, step=16, label="Tile overlap", value=64, elem_id=self.elem_id("overlap"))
        scale_factor = gr.Slider(minimum=1.0, maximum=4.0, step=0.05, label="Scale Factor", value=2.0, elem_id=self.elem_id("scale_factor"))
        upscaler_index = gr.Radio(label="Upscaler", choices=names, value=names[0], type="index", elem_id=self.elem_id("upscaler_index"))
        return [info, overlap, upscaler_index, scale_factor]

    def run(self, p, _, overlap, upscaler_index, scale_factor):
        overlap = int(overlap)
        if overlap >= min(p.width, p.height):
            raise ValueError(f"SD upscale: tile overlap ({overlap}) must be smaller than the tile size {p.width}x{p.height}")
        processing.fix_seed(p)
        upscaler = resolve_upscaler(upscaler_index)

        p.extra_generation_params["SD upscale overlap"] = overlap
        p.extra_generation_params["SD upscale upscaler"] = upscaler.name

        initial_info = None
        seed = p.seed

        init_img = images.flatten(p.init_images[0], opts.img2img_background_color)
        img = upscaler.scaler.upscale(init_img, scale_factor, upscaler.data_path) if upscaler.name != "None" else init_img
        devices.torch_gc()

        grid = images.split_grid(img, tile_w=p.width, tile_h=p.height, overlap=overlap)

        batch_size = p.batch_size
        upscale_count = p.n_iter
        p.n_iter = 1
        p.do_not_save_grid = True
        p.do_not_save_samples = True

        work = [tiledata[2] for _y, _h, row in grid.tiles for tiledata in row]
        batch_count = math.ceil(len(work) / batch_size)
        state.job_count = batch_count * upscale_count
        print(f"SD upscaling will process a total of {len(work)} {p.width}x{p.height} tiles / {batch_count} batches / {upscale_count} iterations.")

        result_images = []
        for n in range(upscale_count):
            start_seed = seed + n
            p.seed = start_seed
            work_results = []
            for i in range(batch_count):
                p.batch_size = batch_size
                p.init_images = work[i * batch_size:(i + 1) * batch_size]
                state.job = f"Batch {i + 1 + n * batch_count} out of {state.job_count}"
                processed = processing.process_images(p)
                if initial_info is None:
                    initial_info = processed.info
                p.seed = processed.seed + 1
                work_results += processed.images

            image_index = 0
            for _y, _h, row in grid.tiles:
                for tiledata in row:
                    tiledata[2] = work_results[image_index] if image_index < len(work_results) else Image.new("RGB", (p.width, p.height))
                    image_index += 1

            combined_image = images.combine_grid(grid)
            result_images.append(combined_image)
            if opts.samples_save:
                images.save_image(combined_image, p.outpath_samples, "", start_seed, p.prompt, opts.samples_format, info=initial_info, p=p)

        return Processed(p, result_images, seed, initial_info)
