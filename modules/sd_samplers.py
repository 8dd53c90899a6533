"""The sampler registry: every sampler by its UI name and aliases, and name resolution for UI, API and infotext
(A1111: modules.sd_samplers)."""
from modules import sd_samplers_kdiffusion, sd_samplers_timesteps, sd_samplers_lcm, sd_schedulers, shared, sd_samplers_common

# imports for functions that previously were here and are used by other modules
from modules.sd_samplers_common import samples_to_image_grid, sample_to_image  # noqa: F401

all_samplers = [
    *sd_samplers_kdiffusion.samplers_data_k_diffusion,
    *sd_samplers_timesteps.samplers_data_timesteps,
    *sd_samplers_lcm.samplers_data_lcm,
]
all_samplers_map = {x.name: x for x in all_samplers}

samplers: list = []
samplers_for_img2img: list = []
samplers_map = {}  # lowercase name or alias -> name
samplers_hidden = set()


def find_sampler_config(name):
    """The SamplerData for a name or alias (any case); the default sampler for None; None if unknown."""
    if name is None:
        return all_samplers[0]

    config = all_samplers_map.get(name)
    if config is not None:
        return config

    canonical = samplers_map.get(str(name).strip().lower())
    return all_samplers_map.get(canonical) if canonical is not None else None


def _unknown_sampler(name):
    valid = ", ".join(x.name for x in all_samplers)
    return ValueError(f"Unknown sampler {name!r}; valid samplers: {valid}")


def create_sampler(name, model):
    """A new sampler instance for `name` (a UI name or alias) over `model`; ValueError for an unknown name."""
    config = find_sampler_config(name)
    if config is None:
        raise _unknown_sampler(name)

    if getattr(model, "is_sdxl", False) and config.options.get("no_sdxl", False):
        raise ValueError(f"Sampler {config.name} is not supported for SDXL")

    sampler = config.constructor(model)
    sampler.config = config

    return sampler


def set_samplers():
    """Rebuild the visible lists and the name map (after the hide_samplers setting changes)."""
    global samplers, samplers_for_img2img, samplers_hidden

    samplers_hidden = set(shared.opts.hide_samplers or [])
    samplers = all_samplers
    samplers_for_img2img = all_samplers

    samplers_map.clear()
    for sampler in all_samplers:
        samplers_map[sampler.name.lower()] = sampler.name
        for alias in sampler.aliases:
            samplers_map[alias.lower()] = sampler.name


def visible_samplers():
    return [x for x in samplers if x.name not in samplers_hidden]


def visible_sampler_names():
    return [x.name for x in samplers if x.name not in samplers_hidden]


def _split_legacy_name(name):
    """("DPM++ 2M Karras") -> ("DPM++ 2M", Scheduler karras): old combined names carry the schedule as a suffix."""
    if find_sampler_config(name) is not None:
        return name, None

    for scheduler in sd_schedulers.schedulers:
        for option in [scheduler.label, scheduler.name, *(scheduler.aliases or [])]:
            if name.lower().endswith(" " + option.lower()):
                base = name[:-(len(option) + 1)].strip()
                if find_sampler_config(base) is not None:
                    return base, scheduler

    return name, None


def get_sampler_and_scheduler(sampler_name, scheduler_name, *, convert_automatic=True):
    """(sampler UI name, schedule label) from names as users, the API and infotexts write them.

    Accepts aliases ("k_euler_a") and legacy combined names ("DPM++ 2M Karras" -> "DPM++ 2M" + Karras). An empty
    name means the default. A schedule equal to the sampler's default becomes "Automatic" unless
    convert_automatic=False. Unknown names raise ValueError listing the valid ones.
    """
    found_scheduler = sd_schedulers.find_scheduler(scheduler_name)

    name = sampler_name if sampler_name else all_samplers[0].name
    name, suffix_scheduler = _split_legacy_name(str(name).strip())
    if suffix_scheduler is not None:
        found_scheduler = suffix_scheduler

    sampler = find_sampler_config(name)
    if sampler is None:
        raise _unknown_sampler(sampler_name)

    if convert_automatic and sampler.options.get('scheduler', None) == found_scheduler.name:
        found_scheduler = sd_schedulers.schedulers[0]

    return sampler.name, found_scheduler.label


def get_sampler_from_infotext(d: dict):
    return get_sampler_and_scheduler(d.get("Sampler"), d.get("Schedule type"))[0]


def get_scheduler_from_infotext(d: dict):
    return get_sampler_and_scheduler(d.get("Sampler"), d.get("Schedule type"))[1]


def get_hr_sampler_and_scheduler(d: dict):
    """Hires sampler and schedule from an infotext; "Use same sampler"/"Use same scheduler" when equal to the first pass."""
    hr_sampler = d.get("Hires sampler", "Use same sampler")
    sampler = d.get("Sampler") if hr_sampler == "Use same sampler" else hr_sampler

    hr_scheduler = d.get("Hires schedule type", "Use same scheduler")
    scheduler = d.get("Schedule type") if hr_scheduler == "Use same scheduler" else hr_scheduler

    sampler, scheduler = get_sampler_and_scheduler(sampler, scheduler)

    sampler = sampler if sampler != d.get("Sampler") else "Use same sampler"
    scheduler = scheduler if scheduler != d.get("Schedule type") else "Use same scheduler"

    return sampler, scheduler


def get_hr_sampler_from_infotext(d: dict):
    return get_hr_sampler_and_scheduler(d)[0]


def get_hr_scheduler_from_infotext(d: dict):
    return get_hr_sampler_and_scheduler(d)[1]


set_samplers()

is_sampler_using_eta_noise_seed_delta = sd_samplers_common.is_sampler_using_eta_noise_seed_delta
