"""What the API's list endpoints answer (samplers, models, styles, scripts, ...), read from the engine's registries
in A1111's shapes."""
import os

from modules import shared

def samplers():
    from modules import sd_samplers
    return [{"name": x.name, "aliases": list(x.aliases), "options": dict(x.options)} for x in sd_samplers.all_samplers]


def schedulers():
    from modules import sd_schedulers
    return [{"name": x.name, "label": x.label, "aliases": x.aliases, "default_rho": x.default_rho,
             "need_inner_model": x.need_inner_model} for x in sd_schedulers.schedulers]


def upscalers():
    return [{"name": x.name, "model_name": x.scaler.model_name if x.scaler is not None else None, "model_path": x.data_path,
             "model_url": None, "scale": x.scale} for x in shared.sd_upscalers]


def latent_upscale_modes():
    from modules.processing_txt2img import latent_upscale_modes as modes
    return [{"name": name} for name in modes]


def sd_models():
    from modules import sd_models as models
    return [{"title": x.title, "model_name": x.model_name, "hash": x.shorthash, "sha256": x.sha256, "filename": x.filename,
             "config": None} for x in models.checkpoints_list.values()]


def sd_vaes():
    from modules import sd_vae
    return [{"model_name": name, "filename": path} for name, path in sd_vae.vae_dict.items()]


def hypernetworks():
    return [{"name": name, "path": path} for name, path in (shared.hypernetworks or {}).items()]


def face_restorers():
    return [{"name": x.name(), "cmd_dir": getattr(x, "cmd_dir", None)} for x in shared.face_restorers]


def realesrgan_models():
    from modules import realesrgan_model
    scaler = next((x.scaler for x in shared.sd_upscalers if isinstance(x.scaler, realesrgan_model.UpscalerRealESRGAN)), None)
    scaler = scaler or realesrgan_model.UpscalerRealESRGAN(shared.cmd_opts.realesrgan_models_path)
    return [{"name": x.name, "path": x.data_path, "scale": x.scale} for x in realesrgan_model.get_realesrgan_models(scaler)]


def prompt_styles():
    styles = shared.prompt_styles.styles.values() if shared.prompt_styles is not None else []
    return [{"name": x.name, "prompt": x.prompt, "negative_prompt": x.negative_prompt} for x in styles]


def embeddings():
    from modules import sd_hijack
    db = sd_hijack.model_hijack.embedding_db

    def item(embedding):
        return {"step": embedding.step, "sd_checkpoint": embedding.sd_checkpoint, "sd_checkpoint_name": embedding.sd_checkpoint_name,
                "shape": embedding.shape or 0, "vectors": embedding.vectors or 0}
    return {"loaded": {name: item(e) for name, e in db.word_embeddings.items()},
            "skipped": {name: item(e) for name, e in db.skipped_embeddings.items()}}


def loras():
    """The LoRA/LyCORIS files the engine knows (models/Lora, --lora-dir, models/LyCORIS), as A1111's built-in Lora
    extension answers: name, alias, path, safetensors metadata."""
    from modules.lora import networks
    if not networks.available_networks:
        networks.list_available_networks()
    return [{"name": n.name, "alias": n.alias, "path": n.filename, "metadata": n.metadata}
            for n in networks.available_networks.values()]


def refresh_loras():
    from modules.lora import networks
    networks.list_available_networks()


def memory():
    try:
        import psutil
        process = psutil.Process(os.getpid())
        res = process.memory_info()
        total = psutil.virtual_memory().total
        ram = {"free": total - res.rss, "used": res.rss, "total": total}
    except Exception as e:
        ram = {"error": str(e)}
    try:
        import torch
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            stats = dict(torch.cuda.memory_stats(shared.device))

            def pair(key):
                return {"current": stats[f"{key}.all.current"], "peak": stats[f"{key}.all.peak"]}
            cuda = {"system": {"free": free, "used": total - free, "total": total}, "active": pair("active_bytes"),
                    "allocated": pair("allocated_bytes"), "reserved": pair("reserved_bytes"),
                    "inactive": pair("inactive_split_bytes"),
                    "events": {"retries": stats["num_alloc_retries"], "oom": stats["num_ooms"]}}
        else:
            cuda = {"error": "unavailable"}
    except Exception as e:
        cuda = {"error": str(e)}
    result = {"ram": ram, "cuda": cuda}
    from modules.distributed import front
    if front.pool is not None:  # a front of Ray workers: each worker's state, model, queue and its own memory
        result["workers"] = front.pool.worker_states()
    return result


def _runners():
    from modules import scripts
    return [r for r in (scripts.scripts_txt2img, scripts.scripts_img2img) if r is not None]


def scripts_list():
    from modules import scripts

    def names(runner):
        return [s.name for s in runner.scripts if s.name is not None] if runner is not None else []
    return {"txt2img": names(scripts.scripts_txt2img), "img2img": names(scripts.scripts_img2img)}


def script_info():
    return [s.api_info for runner in _runners() for s in runner.scripts if getattr(s, "api_info", None) is not None]


def extensions_list():
    from modules import extensions
    found = []
    for ext in extensions.extensions:
        ext.read_info_from_repo()
        if ext.remote is not None:
            found.append({"name": ext.name, "remote": ext.remote, "branch": ext.branch, "commit_hash": ext.commit_hash,
                          "commit_date": ext.commit_date, "version": ext.version, "enabled": ext.enabled})
    return found
