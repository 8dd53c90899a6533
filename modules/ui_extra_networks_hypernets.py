"""The Hypernetworks card page (A1111: modules.ui_extra_networks_hypernets)."""
import os

from modules import hashes, shared, ui_extra_networks


class ExtraNetworksPageHypernetworks(ui_extra_networks.ExtraNetworksPage):
    """`shared.hypernetworks` (name -> file, from --hypernetwork-dir); a card inserts <hypernet:name:multiplier>."""

    def __init__(self):
        super().__init__("Hypernetworks")

    def refresh(self):
        shared.reload_hypernetworks()

    def create_item(self, name, index=None, enable_filter=True):
        full_path = shared.hypernetworks.get(name)
        if full_path is None:
            return None
        path, _ = os.path.splitext(full_path)
        sha256 = hashes.sha256_from_cache(full_path, f"hypernet/{name}")
        search_terms = [self.search_terms_from_path(full_path)]
        if sha256:
            search_terms.append(sha256)
        item = {
            "name": name,
            "filename": full_path,
            "shorthash": sha256[0:10] if sha256 else None,
            "preview": self.find_preview(path),
            "description": self.find_description(path),
            "search_terms": search_terms,
            "prompt": ui_extra_networks.quote_js(f"<hypernet:{name}:") + " + opts.extra_networks_default_multiplier + " + ui_extra_networks.quote_js(">"),
            "local_preview": f"{path}.preview.{ui_extra_networks.samples_format()}",
            "sort_keys": {"default": index, **self.get_sort_keys(full_path)},
        }
        self.read_user_metadata(item)
        return item

    def list_items(self):
        return self.items_for(shared.hypernetworks)

    def allowed_directories_for_previews(self):
        return [shared.cmd_opts.hypernetwork_dir]
