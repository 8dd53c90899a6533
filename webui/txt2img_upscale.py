"""txt2img's ✨ (A1111's txt2img_upscale): "Create an upscaled version of the current image using hires fix
settings": only the hires pass runs, on the selected gallery image, with that image's seed and variation seed read
from its infotext, batch 1; the upscaled image and its infotext take the selected one's place in the results."""
import dataclasses
import json

from modules import infotext_utils
from webui import send_to


def upscale_request(request, gallery_value, selected_index, generation_info):
    """(the txt2img request for the selected image's hires pass, its gallery index); ValueError when there is
    nothing to upscale."""
    index = send_to.selected_gallery_index(gallery_value, selected_index, generation_info)
    if index is None:
        raise ValueError("✨ Upscale: there is no image in the results yet; generate one first.")
    image = send_to.to_pil(gallery_value[index])
    if image is None:
        raise ValueError(f"✨ Upscale: result image {index + 1} could not be read.")
    infotexts = _job_info(generation_info).get("infotexts") or []
    params = infotext_utils.parse_generation_parameters(infotexts[index]) if index < len(infotexts) else {}
    upscale = dict(request, enable_hr=True, batch_size=1, n_iter=1, firstpass_image=image,
                   seed=params.get("Seed", -1), subseed=params.get("Variation seed", -1))
    # the first pass is the image given: nothing to save of it
    upscale["override_settings"] = {**(request.get("override_settings") or {}), "save_images_before_highres_fix": False}
    return upscale, index


def shown_in_place(gallery_value, generation_info, index, result):
    """The JobResult the results column shows: the earlier result with image `index` and its infotext replaced by
    the upscaled job's (its infotext shown)."""
    images = [item[0] if isinstance(item, (tuple, list)) else item for item in gallery_value]
    images[index:index + 1] = result.images[result.index_of_first_image:] or result.images
    info = _job_info(generation_info)
    infotexts = list(info.get("infotexts") or [])
    if index < len(infotexts):
        infotexts[index:index + 1] = result.infotexts[result.index_of_first_image:] or result.infotexts
    info["infotexts"] = infotexts
    return dataclasses.replace(result, images=images, info=json.dumps(info), infotexts=infotexts,
                               index_of_first_image=index)


def _job_info(generation_info):
    try:
        info = json.loads(generation_info or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}
