"""Choice lists of settings whose choices depend on what is installed (A1111: modules.shared_items).

Each function is called when the Settings page is built and again when a changed value is checked, so a checkpoint,
VAE or upscaler added since start-up is a valid choice.
"""


def realesrgan_models_names():
    from modules import realesrgan_model
    return list(realesrgan_model.known_models)


def dat_models_names():
    from modules import dat_model
    return list(dat_model.known_models)


def postprocessing_scripts():
    from modules import scripts
    return scripts.scripts_postproc.scripts_in_preferred_order() if scripts.scripts_postproc is not None else []


def sd_vae_items():
    from modules import sd_vae
    return ["Automatic", "None"] + list(sd_vae.vae_dict)


def refresh_vae_list():
    from modules import sd_vae
    sd_vae.refresh_vae_list()


def cross_attention_optimizations():
    return ["Automatic", "SDP"]


def sd_unet_items():
    return ["Automatic", "None"]


def upscaler_names():
    from modules import shared
    return [x.name for x in shared.sd_upscalers]


def lora_names():
    from modules.lora import networks
    return list(networks.available_networks)


def hypernetwork_names():
    from modules import shared
    return ["None", *shared.hypernetworks]


def localization_names():
    from modules import extensions
    return ["None", *sorted(extensions.localization_files())]


def list_checkpoint_tiles(use_short=False):
    from modules import sd_models
    return sd_models.checkpoint_tiles(use_short)


def refresh_checkpoints():
    from modules import sd_models
    return sd_models.list_models()


def list_samplers():
    from modules import sd_samplers
    return sd_samplers.all_samplers


def sampler_names():
    return [x.name for x in list_samplers()]


ui_reorder_categories_builtin_items = ["prompt", "image", "inpaint", "sampler", "accordions", "checkboxes", "dimensions",
                                      "cfg", "denoising", "seed", "batch", "override_settings"]


def ui_reorder_categories():
    """The movable parts of a generation tab, in A1111's default order: the built-in ones, then the sections that
    always-on scripts declare (`Script.section`), then "scripts"."""
    from modules import scripts
    yield from ui_reorder_categories_builtin_items
    sections = {}
    for runner in (scripts.scripts_txt2img, scripts.scripts_img2img):
        for script in runner.scripts if runner is not None else []:
            if isinstance(script.section, str) and script.section not in ui_reorder_categories_builtin_items:
                sections[script.section] = 1
    yield from sections
    yield "scripts"


def ordered_ui_categories():
    """ui_reorder_categories() reordered by the `ui_reorder_list` setting, A1111's rule: the n-th category named
    there ranks 2n+1, every other category 2 x its default position, so named ones move in between."""
    from modules import shared
    user_order = {x.strip(): i * 2 + 1 for i, x in enumerate(shared.opts.ui_reorder_list)}
    ranked = sorted(enumerate(ui_reorder_categories()), key=lambda x: user_order.get(x[1], x[0] * 2))
    return [category for _, category in ranked]


def tab_names():
    from modules import shared
    return list(shared.tab_names)


def get_infotext_names():
    """Infotext keys that the paste can skip: the settings' infotext names and the scripts' paste fields."""
    from modules import scripts, shared
    names = [info.infotext for info in shared.opts.data_labels.values() if info.infotext]
    for runner in (scripts.scripts_txt2img, scripts.scripts_img2img):
        for script in (runner.scripts if runner is not None else []):
            for _, name in script.infotext_fields or []:
                if isinstance(name, str):
                    names.append(name)
    return list(dict.fromkeys(names))
