"""Prompt matrix: every combination of the `|`-separated parts of a prompt, in one labelled grid (A1111 script)."""
import math

import gradio as gr

from modules import images, processing, scripts
from modules.shared import opts


def matrix_prompts(prompt: str, put_at_start: bool, delimiter: str):
    """Part 0 always; combination k adds part n+1 when bit n of k is set (A1111's order)."""
    parts = [part.strip().strip(",").strip() for part in prompt.split("|")]
    prompts = []
    for combination in range(2 ** (len(parts) - 1)):
        selected = [text for n, text in enumerate(parts[1:]) if combination & (1 << n)]
        selected = selected + [parts[0]] if put_at_start else [parts[0]] + selected
        prompts.append(delimiter.join(x for x in selected if x))
    return parts, prompts


class Script(scripts.Script):
    def title(self):
        return "Prompt matrix"

    def ui(self, is_img2img):
        gr.HTML("<p>Separate the parts of the prompt with <code>|</code>; every combination is drawn.</p>")
        with gr.Row():
            put_at_start = gr.Checkbox(label="Put variable parts at start of prompt", value=False, elem_id=self.elem_id("put_at_start"))
            different_seeds = gr.Checkbox(label="Use different seed for each picture", value=False, elem_id=self.elem_id("different_seeds"))
        with gr.Row():
            prompt_type = gr.Radio(["positive", "negative"], label="Select prompt", value="positive", elem_id=self.elem_id("prompt_type"))
            variations_delimiter = gr.Radio(["comma", "space"], label="Select joining char", value="comma", elem_id=self.elem_id("variations_delimiter"))
            margin_size = gr.Slider(label="Grid margins (px)", minimum=0, maximum=500, value=0, step=2, elem_id=self.elem_id("margin_size"))
        return [put_at_start, different_seeds, prompt_type, variations_delimiter, margin_size]

    def run(self, p, put_at_start, different_seeds, prompt_type, variations_delimiter, margin_size):
        processing.fix_seed(p)
        if prompt_type not in ("positive", "negative"):
            raise ValueError(f"Prompt matrix: unknown prompt type {prompt_type!r}; expected 'positive' or 'negative'")
        source = p.prompt if prompt_type == "positive" else p.negative_prompt
        original_prompt = source[0] if isinstance(source, list) else source
        positive_prompt = p.prompt[0] if isinstance(p.prompt, list) else p.prompt
        delimiter = ", " if variations_delimiter == "comma" else " "
        parts, all_prompts = matrix_prompts(original_prompt, put_at_start, delimiter)

        p.n_iter = math.ceil(len(all_prompts) / p.batch_size)
        save_grid = opts.grid_save and not p.do_not_save_grid and p.outpath_grids
        p.do_not_save_grid = True  # the script draws its own labelled grid
        print(f"Prompt matrix will create {len(all_prompts)} images using a total of {p.n_iter} batches.")
        if prompt_type == "positive":
            p.prompt = all_prompts
        else:
            p.negative_prompt = all_prompts
        p.seed = [p.seed + (i if different_seeds else 0) for i in range(len(all_prompts))]
        p.prompt_for_display = positive_prompt

        processed = processing.process_images(p)
        cells = processed.images[processed.index_of_first_image:]
        if not cells:
            return processed
        grid = images.image_grid(cells, p.batch_size, rows=1 << ((len(parts) - 1) // 2))
        grid = images.draw_prompt_matrix(grid, cells[0].width, cells[0].height, parts, int(margin_size))
        processed.images = [grid] + cells
        processed.index_of_first_image = 1
        cell_infotexts = processed.infotexts[-len(cells):]
        processed.infotexts = [cell_infotexts[0]] + cell_infotexts
        if save_grid:
            images.save_image(grid, p.outpath_grids, "prompt_matrix", extension=opts.grid_format, prompt=original_prompt, seed=processed.seed, grid=True, p=p)
        return processed
