"""The card metadata editor (A1111: ui_extra_networks_user_metadata.UserMetadataEditor): the 🛠️ button on a card
opens it; Save writes the user's fields to NAME.json beside the model (modules.user_metadata) and redraws the
page, so the card then inserts the new activation text and preferred weight."""
import datetime
import html
import os

import gradio as gr

from modules import errors, ui_extra_networks, user_metadata as um

# (field, what the editor calls it); a page shows the ones in its user_metadata_fields.
FIELD_LABELS = {
    um.DESCRIPTION: "Description", um.SD_VERSION: "Stable Diffusion version", um.ACTIVATION_TEXT: "Activation text",
    um.PREFERRED_WEIGHT: "Preferred weight", um.NEGATIVE_TEXT: "Negative prompt", um.NOTES: "Notes",
}
EDITED_FIELDS = (um.DESCRIPTION, um.SD_VERSION, um.ACTIVATION_TEXT, um.PREFERRED_WEIGHT, um.NEGATIVE_TEXT, um.NOTES)


def parse_target(target):
    """'page\\nname' (what the card's javascript writes) -> (page, item); raises ValueError naming what is wrong."""
    page_name, _, name = (target or "").partition("\n")
    try:
        page = ui_extra_networks.get_page_by_name(page_name)
    except KeyError as e:
        raise ValueError(str(e)) from None
    item = page.items.get(name)
    if item is None or not item.get("filename"):
        raise ValueError(f"the {page.title} page has no card named {name!r}; refresh the page")
    return page, item


def file_summary(page, item):
    filename = item["filename"]
    try:
        stat = os.stat(filename)
        size = f"{stat.st_size / 1024 / 1024:.2f} MB" if stat.st_size >= 1024 * 1024 else f"{stat.st_size / 1024:.1f} KB"
        modified = datetime.datetime.fromtimestamp(stat.st_mtime).strftime("%Y-%m-%d %H:%M")
    except OSError:
        size, modified = "?", "?"
    rows = [("Filename", page.search_terms_from_path(filename).lstrip("/") or os.path.basename(filename)),
            ("File size", size), ("Modified", modified)]
    if item.get("shorthash"):
        rows.append(("Hash", item["shorthash"]))
    tags = (item.get("metadata") or {}).get("ss_tag_frequency") if isinstance(item.get("metadata"), dict) else None
    if isinstance(tags, dict):
        counts = {}
        for dataset in tags.values():
            if isinstance(dataset, dict):
                for tag, count in dataset.items():
                    counts[tag] = counts.get(tag, 0) + (count if isinstance(count, int) else 0)
        top = sorted(counts.items(), key=lambda x: -x[1])[:20]
        if top:
            rows.append(("Training tags", ", ".join(f"{tag} ({count})" for tag, count in top)))
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<h2>{html.escape(item['name'])}</h2><table class='extra-network-editor-file'>{table}</table>"


class UserMetadataEditor:
    def __init__(self, ui, redraw):
        self.ui = ui
        self.redraw = redraw  # (page, tabname) -> the page's HTML, after a save
        self.tabname = ui.tabname
        self.fields = {}

    def create_ui(self):
        tabname = self.tabname
        with gr.Column(visible=False, elem_id=f"{tabname}_extra_networks_editor",
                       elem_classes=["extra-network-editor"]) as self.box:
            self.header = gr.HTML("", elem_id=f"{tabname}_extra_networks_editor_header")
            for field in EDITED_FIELDS:
                elem_id = f"{tabname}_extra_networks_editor_{field.replace(' ', '_')}"
                if field == um.SD_VERSION:
                    component = gr.Dropdown(list(um.SD_VERSIONS), value="Unknown", label=FIELD_LABELS[field], elem_id=elem_id)
                elif field == um.PREFERRED_WEIGHT:
                    component = gr.Slider(0.0, 2.0, value=0.0, step=0.01, label=FIELD_LABELS[field], elem_id=elem_id,
                                          info="0 = the default multiplier")
                else:
                    lines = 3 if field in (um.DESCRIPTION, um.NOTES) else 2
                    component = gr.Textbox(label=FIELD_LABELS[field], lines=lines, elem_id=elem_id)
                self.fields[field] = component
            self.status = gr.HTML("", elem_id=f"{tabname}_extra_networks_editor_status")
            with gr.Row():
                self.save = gr.Button("Save", variant="primary", elem_id=f"{tabname}_extra_networks_editor_save")
                self.cancel = gr.Button("Cancel", elem_id=f"{tabname}_extra_networks_editor_cancel")
        self.target = gr.Textbox(visible="hidden", elem_id=f"{tabname}_extra_networks_edit_target")
        self.open_button = gr.Button(visible="hidden", elem_id=f"{tabname}_extra_networks_edit_open")
        fields = [self.fields[f] for f in EDITED_FIELDS]
        # queued: their gr.Warning / gr.Info reach the page only from a queued event
        self.open_button.click(fn=self.open, inputs=[self.target], outputs=[self.box, self.header, self.status, *fields],
                               show_progress="hidden")
        self.save.click(fn=self.save_fields, inputs=[self.target, *fields],
                        outputs=[self.box, self.status, *self.ui.pages], show_progress="hidden")
        self.cancel.click(fn=lambda: gr.update(visible=False), inputs=[], outputs=[self.box], queue=False,
                          show_progress="hidden")

    def open(self, target):
        try:
            page, item = parse_target(target)
        except ValueError as e:
            gr.Warning(f"Cannot edit: {e}")
            return (gr.update(visible=False), gr.skip(), gr.skip(), *[gr.skip()] * len(EDITED_FIELDS))
        data = um.read(item["filename"])
        values = []
        for field in EDITED_FIELDS:
            shown = field in page.user_metadata_fields
            if field == um.PREFERRED_WEIGHT:
                try:
                    value = um.clean_weight(data.get(field))
                except ValueError:
                    value = 0.0
            elif field == um.SD_VERSION:
                value = data.get(field) if data.get(field) in um.SD_VERSIONS else "Unknown"
            else:
                value = str(data.get(field) or "")
            values.append(gr.update(value=value, visible=shown))
        return (gr.update(visible=True), file_summary(page, item), "", *values)

    def save_fields(self, target, *values):
        skip_pages = [gr.skip()] * len(self.ui.pages)
        try:
            page, item = parse_target(target)
            updates = {field: value for field, value in zip(EDITED_FIELDS, values) if field in page.user_metadata_fields}
            um.write(item["filename"], updates)
        except (ValueError, OSError) as e:
            return (gr.skip(), f"<span class='error'>Not saved: {html.escape(str(e))}</span>", *skip_pages)
        except Exception as e:
            errors.report(f"Error saving user metadata of {target!r}", exc_info=True)
            return (gr.skip(), f"<span class='error'>Not saved: {html.escape(str(e))}</span>", *skip_pages)
        pages = [self.redraw(page, self.tabname) if stored is page else gr.skip() for stored in self.ui.stored_extra_pages]
        gr.Info(f"Saved {um.metadata_path(item['filename'])}")
        return (gr.update(visible=False), "", *pages)
