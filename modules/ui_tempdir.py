"""Re-exports webui/gradio_temp_files.py under the A1111 name extensions import (modules.ui_tempdir)."""
from webui.gradio_temp_files import (  # noqa: F401
    Savedfile, check_tmp_file, cleanup_tmpdr, is_gradio_temp_path, on_tmpdir_changed, register_tmp_file,
    save_pil_to_file,
)
