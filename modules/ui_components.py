"""Re-exports webui/ui_components.py under the A1111 name extensions import (modules.ui_components)."""
from webui.ui_components import *  # noqa: F401,F403
from webui.ui_components import (  # noqa: F401
    ToolButton, ResizeHandleRow, FormRow, FormColumn, FormGroup, FormHTML, FormColorPicker, DropdownMulti,
    DropdownEditable, InputAccordion,
)
