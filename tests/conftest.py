"""Test-wide setup: the engine reads its flags and data folder from the environment, never from pytest's argv."""
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Every test session gets its own data folder, so tests never write outputs or config into the checkout.
_data_dir = tempfile.mkdtemp(prefix="sdwebui-test-data-")
os.environ.setdefault("SD_WEBUI_DATA_DIR", _data_dir)
os.environ.setdefault("SD_WEBUI_TEST_ARGV", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
