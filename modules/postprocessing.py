"""The Extras job: run the postprocessing scripts over one image, uploaded files or a folder, and save the results
keeping each source's infotext (A1111: modules.postprocessing)."""
import html
import os

from PIL import Image

from modules import devices, images, infotext_utils, scripts_postprocessing, shared


def _plaintext_to_html(text):
    return "<p>" + "<br>\n".join(html.escape(x) for x in (text or "").split("\n")) + "</p>"


def _postprocessing_runner():
    from modules import scripts
    if scripts.scripts_postproc is None:  # scripts.load_scripts() has not run yet
        scripts.scripts_postproc = scripts_postprocessing.ScriptPostprocessingRunner()
    return scripts.scripts_postproc


def _uploaded_file(item):
    """Gradio file objects of different versions, or plain paths -> (path, original name)."""
    if isinstance(item, str):
        return item, os.path.basename(item)
    if isinstance(item, dict):
        path = item.get("path") or item.get("name")
        return path, item.get("orig_name") or os.path.basename(path)
    path = getattr(item, "path", None) or getattr(item, "name", None)
    return path, getattr(item, "orig_name", None) or os.path.basename(path)


def _images_to_process(extras_mode, image, image_folder, input_dir):
    """(image or path, name) for each source; name is None for the single image."""
    if extras_mode == 1:
        for item in image_folder or []:
            if isinstance(item, Image.Image):
                yield images.fix_image(item), ""
            else:
                path, orig_name = _uploaded_file(item)
                yield path, orig_name
    elif extras_mode == 2:
        if shared.cmd_opts.hide_ui_dir_config:
            raise ValueError("Batch from directory is disabled by --hide-ui-dir-config")
        if not input_dir:
            raise ValueError("Input directory not selected")
        if not os.path.isdir(input_dir):
            raise ValueError(f"Input directory {input_dir} does not exist")
        for filename in shared.listfiles(input_dir):
            yield filename, filename
    else:
        if image is None:
            raise ValueError("Image not selected")
        yield image, None


def _write_caption(fullfn, caption):
    caption_filename = os.path.splitext(fullfn)[0] + ".txt"
    existing_caption = ""
    try:
        with open(caption_filename, encoding="utf8") as file:
            existing_caption = file.read().strip()
    except FileNotFoundError:
        pass
    action = shared.opts.postprocessing_existing_caption_action
    if action == "Prepend" and existing_caption:
        caption = f"{existing_caption} {caption}"
    elif action == "Append" and existing_caption:
        caption = f"{caption} {existing_caption}"
    elif action == "Keep" and existing_caption:
        caption = existing_caption
    caption = caption.strip()
    if caption:
        with open(caption_filename, "w", encoding="utf8") as file:
            file.write(caption)


def run_postprocessing(extras_mode, image, image_folder, input_dir, output_dir, show_extras_results, *args, save_output: bool = True):
    """extras_mode 0: `image`; 1: `image_folder` (uploaded files); 2: every file in `input_dir`.

    `args` are the postprocessing scripts' control values in UI order, or a single dict {script name: {arg: value}}.
    Returns (output images, infotext as HTML, "").
    """
    devices.torch_gc()
    shared.state.begin(job="extras")
    outputs = []
    infotext = ""
    skipped = []  # a line for each source that was not an image, told to the user under the result
    try:
        runner = _postprocessing_runner()
        run_args = args[0] if len(args) == 1 and isinstance(args[0], dict) else list(args)

        if extras_mode == 2 and output_dir:
            outpath = output_dir
        else:
            outpath = shared.opts.outdir_samples or shared.opts.outdir_extras_samples
        if not os.path.isabs(outpath):
            outpath = os.path.join(shared.data_path, outpath)

        data_to_process = list(_images_to_process(extras_mode, image, image_folder, input_dir))
        shared.state.job_count = len(data_to_process)

        for image_placeholder, name in data_to_process:
            shared.state.nextjob()
            shared.state.textinfo = name
            shared.state.skipped = False
            if shared.state.interrupted:
                break

            if isinstance(image_placeholder, str):
                try:
                    image_data = images.read(image_placeholder)
                except Exception as e:
                    print(f"Skipping {image_placeholder}: not an image ({e})")
                    skipped.append(f"Skipped {os.path.basename(name or image_placeholder)}: not an image ({e})")
                    continue
            else:
                image_data = image_placeholder
            if image_data.mode not in ("RGBA", "RGB"):
                image_data = image_data.convert("RGB")

            parameters, existing_pnginfo = images.read_info_from_image(image_data)
            if parameters:
                existing_pnginfo["parameters"] = parameters

            initial_pp = scripts_postprocessing.PostprocessedImage(image_data)
            runner.run(initial_pp, run_args)
            if shared.state.skipped:
                continue

            used_suffixes = {}
            for pp in [initial_pp, *initial_pp.extra_images]:
                suffix = pp.get_suffix(used_suffixes)
                if shared.opts.use_original_name_batch and name:
                    basename = os.path.splitext(os.path.basename(name))[0]
                    forced_filename = basename + suffix
                else:
                    basename = ""
                    forced_filename = None

                infotext = ", ".join([k if k == v else f"{k}: {infotext_utils.quote(v)}" for k, v in pp.info.items() if v is not None])
                pnginfo = dict(existing_pnginfo)
                if shared.opts.enable_pnginfo:
                    pnginfo["postprocessing"] = infotext
                    pp.image.info = dict(pnginfo)

                shared.state.assign_current_image(pp.image)
                if save_output:
                    fullfn, _ = images.save_image(
                        pp.image, path=outpath, basename=basename, extension=shared.opts.samples_format, info=infotext,
                        short_filename=True, no_prompt=True, grid=False, pnginfo_section_name="extras",
                        existing_info=pnginfo, forced_filename=forced_filename, suffix=suffix)
                    if pp.caption:
                        _write_caption(fullfn, pp.caption)

                if extras_mode != 2 or show_extras_results:
                    outputs.append(pp.image)
    finally:
        devices.torch_gc()
        shared.state.end()

    notes = skipped + ([] if outputs or infotext else [_nothing_processed(extras_mode, input_dir)])
    return outputs, _plaintext_to_html("\n".join([infotext, *notes]).strip()), ""


def _nothing_processed(extras_mode, input_dir):
    if extras_mode == 2:
        return f"No images were processed: input directory {input_dir} holds no image."
    return "No images were processed: no image was given." if extras_mode == 1 else "No images were processed."


def run_postprocessing_webui(id_task, *args, **kwargs):
    return run_postprocessing(*args, **kwargs)


def run_extras(extras_mode, resize_mode, image, image_folder, input_dir, output_dir, show_extras_results,
               gfpgan_visibility, codeformer_visibility, codeformer_weight, upscaling_resize, upscaling_resize_w,
               upscaling_resize_h, upscaling_crop, extras_upscaler_1, extras_upscaler_2, extras_upscaler_2_visibility,
               upscale_first: bool, save_output: bool = True, max_side_length: int = 0):
    """A1111's old entry point (the REST API's /sdapi/v1/extra-*): every option as an argument."""
    args = {
        "Upscale": {
            "upscale_enabled": True,
            "upscale_mode": resize_mode,
            "upscale_by": upscaling_resize,
            "max_side_length": max_side_length,
            "upscale_to_width": upscaling_resize_w,
            "upscale_to_height": upscaling_resize_h,
            "upscale_crop": upscaling_crop,
            "upscaler_1_name": extras_upscaler_1,
            "upscaler_2_name": extras_upscaler_2,
            "upscaler_2_visibility": extras_upscaler_2_visibility,
        },
        "GFPGAN": {"enable": True, "gfpgan_visibility": gfpgan_visibility},
        "CodeFormer": {"enable": True, "codeformer_visibility": codeformer_visibility, "codeformer_weight": codeformer_weight},
    }
    return run_postprocessing(extras_mode, image, image_folder, input_dir, output_dir, show_extras_results, args, save_output=save_output)
