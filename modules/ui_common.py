"""Re-exports, under the A1111 name modules.ui_common, the UI helpers extensions import (defined in webui/)."""
from webui.extension_ui_helpers import (  # noqa: F401
    create_refresh_button, folder_symbol, plaintext_to_html, refresh_symbol,
)
from webui.ui_components import ToolButton  # noqa: F401
