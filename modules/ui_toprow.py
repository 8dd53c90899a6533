"""Re-exports webui/toprow.py's prompt row under the A1111 name extensions import (modules.ui_toprow)."""
from webui.toprow import Toprow  # noqa: F401
