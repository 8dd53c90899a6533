"""The available LoRA/LyCORIS files as plain records, for the Lora card page and the API.

    for entry in lora_listing.list_loras():
        entry.alias, entry.preview, entry.activation_text, entry.preferred_weight
"""
import os
from dataclasses import dataclass

from modules import ui_extra_networks, user_metadata
from modules.lora import networks


@dataclass(frozen=True)
class LoraListing:
    name: str                 # file name without extension: what <lora:NAME:...> finds
    alias: str                # what a card inserts: the metadata alias, unless the setting or a clash says file name
    filename: str
    metadata: dict            # training metadata from the safetensors header (ss_*), {} for other files
    shorthash: str            # A1111's 12-hex short hash, "" while the file is not hashed yet
    sd_version: str           # "SD1", "SD2", "SDXL" or "Unknown", from the training metadata
    preview: str              # NAME.png / NAME.preview.png (or jpg, webp, ...) beside the file, or None
    user_metadata: dict       # NAME.json beside the file (the card editor writes it)
    activation_text: str      # user_metadata "activation text": inserted after the tag
    preferred_weight: float   # user_metadata "preferred weight"; 0 means the default multiplier
    negative_text: str        # user_metadata "negative text"


def listing_for(network_on_disk):
    notes = user_metadata.read(network_on_disk.filename)
    try:
        preferred_weight = user_metadata.clean_weight(notes.get(user_metadata.PREFERRED_WEIGHT))
    except ValueError:
        preferred_weight = 0.0
    return LoraListing(
        name=network_on_disk.name,
        alias=network_on_disk.get_alias(),
        filename=network_on_disk.filename,
        metadata=network_on_disk.metadata,
        shorthash=network_on_disk.shorthash or "",
        sd_version=network_on_disk.sd_version.name,
        preview=ui_extra_networks.find_preview_file(os.path.splitext(network_on_disk.filename)[0]),
        user_metadata=notes,
        activation_text=str(notes.get(user_metadata.ACTIVATION_TEXT, "") or ""),
        preferred_weight=preferred_weight,
        negative_text=str(notes.get(user_metadata.NEGATIVE_TEXT, "") or ""),
    )


def list_loras(refresh=True):
    """Every network file found (rescanning the folders first unless refresh=False), sorted by name."""
    if refresh or not networks.available_networks:
        networks.list_available_networks()
    return [listing_for(entry) for _, entry in sorted(networks.available_networks.items(), key=lambda x: x[0].lower())]
