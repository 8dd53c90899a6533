"""The Lora card page (A1111: the built-in Lora extension's `ui_extra_networks_lora`, which extensions import by that
bare name). A card inserts `<lora:ALIAS:WEIGHT>` (the preferred weight from NAME.json, else the default multiplier)
followed by the activation text, and the negative text into the negative prompt; its ⓘ shows the training metadata.
The files come from the Lora engine's listing (modules.lora)."""
from modules import shared, ui_extra_networks, user_metadata
from modules.lora import lora_listing, networks

quote_js = ui_extra_networks.quote_js


def card_prompt(alias, preferred_weight, activation_text):
    """The javascript expression a card inserts (A1111's form: the default multiplier is read in the browser)."""
    weight = str(preferred_weight) if preferred_weight else "opts.extra_networks_default_multiplier"
    prompt = quote_js(f"<lora:{alias}:") + " + " + weight + " + " + quote_js(">")
    if activation_text:
        prompt += " + " + quote_js(" " + activation_text)
    return prompt


def hidden_for_model(sd_version):
    """A1111's rule: unless "Always show all networks", a LoRA made for another model family is left off the page."""
    model = shared.sd_model
    if model is None or shared.opts.lora_show_all:
        return False
    model_version = "SDXL" if model.is_sdxl else "SD2" if model.is_sd2 else "SD1"
    if sd_version == "Unknown":
        return model_version in shared.opts.lora_hide_unknown_for_versions
    return sd_version != model_version


class ExtraNetworksPageLora(ui_extra_networks.ExtraNetworksPage):
    user_metadata_fields = user_metadata.FIELDS

    def __init__(self):
        super().__init__("Lora")

    def refresh(self):
        networks.list_available_networks()

    def create_item(self, name, index=None, enable_filter=True):
        network_on_disk = networks.available_networks.get(name)
        if network_on_disk is None:
            return None
        entry = lora_listing.listing_for(network_on_disk)
        sd_version = entry.user_metadata.get(user_metadata.SD_VERSION)
        if sd_version not in user_metadata.SD_VERSIONS:
            sd_version = entry.sd_version
        if enable_filter and hidden_for_model(sd_version):
            return None
        path = entry.filename.rsplit(".", 1)[0]
        search_terms = [self.search_terms_from_path(entry.filename)]
        if entry.shorthash:
            search_terms.append(entry.shorthash)
        if entry.alias != entry.name:
            search_terms.append(entry.alias)
        item = {
            "name": name,
            "filename": entry.filename,
            "shorthash": entry.shorthash,
            "preview": self.link_preview(entry.preview) if entry.preview else None,
            "description": entry.user_metadata.get(user_metadata.DESCRIPTION) or self.find_description(path),
            "search_terms": search_terms,
            "local_preview": f"{path}.{ui_extra_networks.samples_format()}",
            "metadata": entry.metadata,
            "sort_keys": {"default": index, **self.get_sort_keys(entry.filename)},
            "sd_version": sd_version,
            "user_metadata": entry.user_metadata,
            "prompt": card_prompt(entry.alias, entry.preferred_weight, entry.activation_text),
            "negative_prompt": quote_js(f"({entry.negative_text}:1)" if entry.negative_text else ""),
        }
        return item

    def list_items(self):
        return self.items_for(networks.available_networks)

    def allowed_directories_for_previews(self):
        return [d for d in networks.network_directories() if d]
