"""The Checkpoints card page (A1111: modules.ui_extra_networks_checkpoints)."""
import html
import os

from modules import shared, ui_extra_networks


class ExtraNetworksPageCheckpoints(ui_extra_networks.ExtraNetworksPage):
    """The checkpoints of models/Stable-diffusion and --ckpt-dir; a card selects the checkpoint."""

    def __init__(self):
        super().__init__("Checkpoints")
        self.allow_prompt = False

    def refresh(self):
        from modules import sd_models
        sd_models.list_models()

    def create_item(self, name, index=None, enable_filter=True):
        from modules import sd_models
        checkpoint = sd_models.checkpoint_aliases.get(name)
        if checkpoint is None:
            return None
        path, _ = os.path.splitext(checkpoint.filename)
        search_terms = [self.search_terms_from_path(checkpoint.filename)]
        if checkpoint.sha256:
            search_terms.append(checkpoint.sha256)
        item = {
            "name": checkpoint.name_for_extra,
            "filename": checkpoint.filename,
            "shorthash": checkpoint.shorthash,
            "preview": self.find_preview(path),
            "description": self.find_description(path),
            "search_terms": search_terms,
            "onclick": html.escape(f"return selectCheckpoint({ui_extra_networks.quote_js(name)})"),
            "local_preview": f"{path}.{ui_extra_networks.samples_format()}",
            "metadata": checkpoint.metadata,
            "sort_keys": {"default": index, **self.get_sort_keys(checkpoint.filename)},
        }
        self.read_user_metadata(item)
        return item

    def list_items(self):
        from modules import sd_models
        return self.items_for(sd_models.checkpoints_list)

    def allowed_directories_for_previews(self):
        from modules import sd_models
        return [v for v in [shared.cmd_opts.ckpt_dir, sd_models.model_path] if v is not None]
