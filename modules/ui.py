"""Re-exports, under the A1111 name modules.ui, the UI helpers extensions import (defined in webui/)."""
from modules.shared_items import ordered_ui_categories  # noqa: F401
from webui.extension_ui_helpers import (  # noqa: F401
    apply_style_symbol, clear_prompt_symbol, create_override_settings_dropdown, create_refresh_button,
    detect_image_size_symbol, extra_networks_symbol, folder_symbol, gr_show, paste_symbol, plaintext_to_html,
    refresh_symbol, resize_from_to_html, restore_progress_symbol, save_style_symbol, switch_values_symbol, versions_html,
)
from webui.saved_outputs import create_output_panel, save_files, update_generation_info  # noqa: F401
from webui.ui_components import ToolButton  # noqa: F401
