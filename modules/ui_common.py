"""Re-exports, under the A1111 name modules.ui_common, the UI helpers extensions import (defined in webui/)."""
from webui.extension_ui_helpers import (  # noqa: F401
    create_refresh_button, folder_symbol, plaintext_to_html, refresh_symbol, versions_html,
)
from webui.output_panel import OutputPanel  # noqa: F401
from webui.saved_outputs import create_output_panel, save_files, update_generation_info  # noqa: F401
from webui.ui_components import ToolButton  # noqa: F401
