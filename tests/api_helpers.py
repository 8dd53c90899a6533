"""Helpers for tests against a live API server: requests with base64 images, and a data folder with the demo model."""
import base64
import io
import json
import os
import shutil

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CHECKPOINT = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")

# A cheap request on the demo model (its native 64x64).
SMALL = {"prompt": "a large red circle in the centre on a white background", "steps": 3, "width": 64, "height": 64,
         "sampler_name": "Euler a", "cfg_scale": 7}


def data_dir_with_demo_model(path):
    models = os.path.join(str(path), "models", "Stable-diffusion")
    os.makedirs(models, exist_ok=True)
    shutil.copy(DEMO_CHECKPOINT, models)
    return str(path)


def b64_png(image: Image.Image, data_uri=False) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    text = base64.b64encode(buffer.getvalue()).decode("ascii")
    return "data:image/png;base64," + text if data_uri else text


def image_from_b64(text: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(text)))
    image.load()
    return image


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def info_of(response) -> dict:
    return json.loads(response.json()["info"])
