"""Prompts from file or textbox: one job per line, each line a prompt or `--key value` overrides (A1111 script)."""
import copy
import random
import shlex

import gradio as gr

from modules import errors, processing, scripts, sd_models, shared
from modules.processing import Processed
from modules.shared import state


def process_model_tag(tag):
    info = sd_models.get_closet_checkpoint_match(tag)
    if info is None:
        raise ValueError(f"Unknown checkpoint: {tag}")
    return info.name


def process_string_tag(tag):
    return tag


def process_int_tag(tag):
    return int(tag)


def process_float_tag(tag):
    return float(tag)


def process_boolean_tag(tag):
    return tag == "true"


prompt_tags = {
    "sd_model": process_model_tag,
    "outpath_samples": process_string_tag,
    "outpath_grids": process_string_tag,
    "prompt_for_display": process_string_tag,
    "prompt": process_string_tag,
    "negative_prompt": process_string_tag,
    "styles": process_string_tag,
    "seed": process_int_tag,
    "subseed_strength": process_float_tag,
    "subseed": process_int_tag,
    "seed_resize_from_h": process_int_tag,
    "seed_resize_from_w": process_int_tag,
    "sampler_index": process_int_tag,
    "sampler_name": process_string_tag,
    "batch_size": process_int_tag,
    "n_iter": process_int_tag,
    "steps": process_int_tag,
    "cfg_scale": process_float_tag,
    "width": process_int_tag,
    "height": process_int_tag,
    "restore_faces": process_boolean_tag,
    "tiling": process_boolean_tag,
    "do_not_save_samples": process_boolean_tag,
    "do_not_save_grid": process_boolean_tag,
}


def cmdargs(line):
    """`--key value ...` -> {key: value}; --prompt / --negative_prompt swallow words until the next `--`."""
    args = shlex.split(line)
    pos = 0
    res = {}
    while pos < len(args):
        arg = args[pos]
        if not arg.startswith("--"):
            raise ValueError(f"must start with \"--\": {arg}")
        if pos + 1 >= len(args):
            raise ValueError(f"missing argument for command line option {arg}")
        tag = arg[2:]
        if tag in ("prompt", "negative_prompt"):
            pos += 1
            prompt = args[pos]
            pos += 1
            while pos < len(args) and not args[pos].startswith("--"):
                prompt += " " + args[pos]
                pos += 1
            res[tag] = prompt
            continue
        func = prompt_tags.get(tag)
        if func is None:
            raise ValueError(f"unknown commandline option: {arg}; known: {', '.join('--' + k for k in prompt_tags)}")
        val = args[pos + 1]
        if tag == "sampler_name":
            val = sd_samplers_lookup(val)
        res[tag] = func(val)
        pos += 2
    return res


def sd_samplers_lookup(name):
    from modules import sd_samplers
    found = sd_samplers.samplers_map.get(name.lower(), None)
    if found is None:
        raise ValueError(f"Unknown sampler: {name}")
    return found


def load_prompt_file(file):
    if file is None:
        return None, gr.update(), gr.update(lines=7)
    with open(file if isinstance(file, str) else file.name, "rb") as handle:
        lines = [x.strip() for x in handle.read().decode("utf8", errors="ignore").split("\n")]
    return None, "\n".join(lines), gr.update(lines=7)


class Script(scripts.Script):
    def title(self):
        return "Prompts from file or textbox"

    def ui(self, is_img2img):
        checkbox_iterate = gr.Checkbox(label="Iterate seed every line", value=False, elem_id=self.elem_id("checkbox_iterate"))
        checkbox_iterate_batch = gr.Checkbox(label="Use same random seed for all lines", value=False, elem_id=self.elem_id("checkbox_iterate_batch"))
        prompt_position = gr.Radio(["start", "end"], label="Insert prompts at the", value="start", elem_id=self.elem_id("prompt_position"))
        prompt_txt = gr.Textbox(label="List of prompt inputs", lines=1, elem_id=self.elem_id("prompt_txt"))
        file = gr.File(label="Upload prompt inputs", type="filepath", elem_id=self.elem_id("file"))
        file.change(fn=load_prompt_file, inputs=[file], outputs=[file, prompt_txt, prompt_txt], show_progress="hidden")
        prompt_txt.change(lambda tb: gr.update(lines=7) if ("\n" in tb) else gr.update(lines=2), inputs=[prompt_txt], outputs=[prompt_txt], show_progress="hidden")
        return [checkbox_iterate, checkbox_iterate_batch, prompt_position, prompt_txt]

    def run(self, p, checkbox_iterate, checkbox_iterate_batch, prompt_position, prompt_txt: str):
        lines = [x for x in (x.strip() for x in (prompt_txt or "").splitlines()) if x]
        p.do_not_save_grid = True
        job_count = 0
        jobs = []
        for line in lines:
            if "--" in line:
                try:
                    args = cmdargs(line)
                except Exception as e:
                    errors.report(f"Error parsing line {line} as commandline", exc_info=True)
                    raise ValueError(f"Prompts from file: cannot parse line {line!r}: {e}") from e
            else:
                args = {"prompt": line}
            job_count += args.get("n_iter", p.n_iter)
            jobs.append(args)

        print(f"Will process {len(lines)} lines in {job_count} jobs.")
        if (checkbox_iterate or checkbox_iterate_batch) and p.seed == -1:
            p.seed = int(random.randrange(4294967294))
        state.job_count = job_count

        images, all_prompts, infotexts = [], [], []
        for args in jobs:
            state.job = f"{state.job_no + 1} out of {state.job_count}"
            copy_p = copy.copy(p)
            copy_p.extra_generation_params = dict(p.extra_generation_params)
            copy_p.comments = dict(p.comments)
            for k, v in args.items():
                if k == "sd_model":
                    copy_p.override_settings = dict(copy_p.override_settings, sd_model_checkpoint=v)
                elif k == "styles":
                    copy_p.styles = [x.strip() for x in v.split(",") if x.strip()]
                else:
                    setattr(copy_p, k, v)
            if args.get("prompt") and p.prompt:
                if prompt_position == "start":
                    copy_p.prompt = args.get("prompt") + " " + p.prompt
                else:
                    copy_p.prompt = p.prompt + " " + args.get("prompt")
            if args.get("negative_prompt") and p.negative_prompt:
                if prompt_position == "start":
                    copy_p.negative_prompt = args.get("negative_prompt") + " " + p.negative_prompt
                else:
                    copy_p.negative_prompt = p.negative_prompt + " " + args.get("negative_prompt")
            proc = processing.process_images(copy_p)
            images += proc.images
            if checkbox_iterate:
                p.seed = p.seed + (p.batch_size * p.n_iter)
            all_prompts += proc.all_prompts
            infotexts += proc.infotexts
            if state.interrupted:
                break
        return Processed(p, images, p.seed, "", all_prompts=all_prompts, infotexts=infotexts)
