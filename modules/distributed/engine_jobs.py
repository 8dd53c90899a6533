"""The engine entry points a worker runs, by job kind.

(Until the job queue's own entry points land in modules/txt2img.py, txt2img is built here as the txt2img tab does.)
"""
from modules import processing, shared


def txt2img(args, script_args=()):
    from modules import scripts
    opts = shared.opts
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=shared.sd_model,
        outpath_samples=shared.data_relative(opts.outdir_samples or opts.outdir_txt2img_samples),
        outpath_grids=shared.data_relative(opts.outdir_grids or opts.outdir_txt2img_grids),
        **args,
    )
    runner = scripts.scripts_txt2img
    processed = None
    if runner is not None:
        p.scripts = runner
        p.script_args = list(script_args)
        if script_args:
            processed = runner.run(p, *script_args)
    if processed is None:
        processed = processing.process_images(p)
    p.close()
    return processed


ENTRY_POINTS = {"txt2img": txt2img}


def run(kind, request):
    entry = ENTRY_POINTS.get(kind)
    if entry is None:
        raise ValueError(f"workers cannot run {kind!r} jobs; they run {', '.join(sorted(ENTRY_POINTS))}")
    return entry(**request)
