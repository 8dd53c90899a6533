"""Real-ESRGAN upscalers from models/RealESRGAN (A1111: modules.realesrgan_model).

Files with the names A1111 downloads appear under A1111's names (when enabled in the `realesrgan_enabled_models`
setting); any other model file there appears under its file name. Nothing is downloaded.
"""
import os

from modules import devices, modelloader, shared
from modules.esrgan_model import model_extensions, prefer_half
from modules.upscaler import Upscaler, UpscalerData
from modules.upscaler_utils import upscale_with_model

# A1111's names -> (file name it downloads, scale)
known_models = {
    "R-ESRGAN General 4xV3": ("realesr-general-x4v3.pth", 4),
    "R-ESRGAN General WDN 4xV3": ("realesr-general-wdn-x4v3.pth", 4),
    "R-ESRGAN AnimeVideo": ("realesr-animevideov3.pth", 4),
    "R-ESRGAN 4x+": ("RealESRGAN_x4plus.pth", 4),
    "R-ESRGAN 4x+ Anime6B": ("RealESRGAN_x4plus_anime_6B.pth", 4),
    "R-ESRGAN 2x+": ("RealESRGAN_x2plus.pth", 2),
}


class UpscalerRealESRGAN(Upscaler):
    def __init__(self, path=None):
        self.name = "RealESRGAN"
        self.user_path = path
        super().__init__()
        self.enable = True
        self.scalers = []
        enabled = set(shared.opts.realesrgan_enabled_models or [])
        by_filename = {file: (name, scale) for name, (file, scale) in known_models.items()}
        for file in self.find_models(ext_filter=model_extensions()):
            known = by_filename.get(os.path.basename(file))
            if known is not None:
                name, scale = known
                if name in enabled:
                    self.scalers.append(UpscalerData(name, file, self, scale))
            else:
                self.scalers.append(UpscalerData(modelloader.friendly_name(file), file, self, 4))

    def do_upscale(self, img, path):
        model = self.load_model(path)
        return upscale_with_model(model, img, tile_size=shared.opts.ESRGAN_tile, tile_overlap=shared.opts.ESRGAN_tile_overlap)

    def load_model(self, path):
        for scaler in self.scalers:
            if scaler.data_path == path or scaler.name == path:
                path = scaler.data_path
                break
        return modelloader.load_upscaler_model_cached(path, device=devices.device_esrgan, prefer_half=prefer_half())


def get_realesrgan_models(scaler: UpscalerRealESRGAN):
    """A1111 name: every known Real-ESRGAN model; those whose file is missing have no data_path."""
    folder = scaler.model_path
    return [UpscalerData(name=name, path=os.path.join(folder, file) if os.path.exists(os.path.join(folder, file)) else None, scale=scale, upscaler=scaler)
            for name, (file, scale) in known_models.items()]
