"""The Textual Inversion embeddings card page (A1111: modules.ui_extra_networks_textual_inversion)."""
import os

from modules import shared, ui_extra_networks


class ExtraNetworksPageTextualInversion(ui_extra_networks.ExtraNetworksPage):
    """The embeddings loaded for the current model; a card inserts the embedding's name (into the negative prompt
    too, when that is where the cursor was)."""

    def __init__(self):
        super().__init__("Textual Inversion")
        self.allow_negative_prompt = True

    @staticmethod
    def _db():
        from modules import sd_hijack
        return sd_hijack.model_hijack.embedding_db

    def refresh(self):
        self._db().load_textual_inversion_embeddings(force_reload=True)

    def create_item(self, name, index=None, enable_filter=True):
        embedding = self._db().word_embeddings.get(name)
        if embedding is None or not embedding.filename:
            return None
        path, _ = os.path.splitext(embedding.filename)
        search_terms = [self.search_terms_from_path(embedding.filename)]
        if embedding.hash:
            search_terms.append(embedding.hash)
        item = {
            "name": name,
            "filename": embedding.filename,
            "shorthash": embedding.shorthash,
            "preview": self.find_preview(path),
            "description": self.find_description(path),
            "search_terms": search_terms,
            "prompt": ui_extra_networks.quote_js(embedding.name),
            "local_preview": f"{path}.preview.{ui_extra_networks.samples_format()}",
            "sort_keys": {"default": index, **self.get_sort_keys(embedding.filename)},
        }
        self.read_user_metadata(item)
        return item

    def list_items(self):
        return self.items_for(self._db().word_embeddings)

    def allowed_directories_for_previews(self):
        return list(self._db().embedding_dirs)
