"""DAT upscalers from models/DAT (A1111: modules.dat_model). Only local files; 'DAT x2/x3/x4' when their files
(DAT_x2.pth ...) are present and enabled in `dat_enabled_models`."""
import os

from modules import devices, modelloader, shared
from modules.esrgan_model import model_extensions, prefer_half
from modules.upscaler import Upscaler, UpscalerData
from modules.upscaler_utils import upscale_with_model

known_models = {"DAT x2": ("DAT_x2.pth", 2), "DAT x3": ("DAT_x3.pth", 3), "DAT x4": ("DAT_x4.pth", 4)}


class UpscalerDAT(Upscaler):
    def __init__(self, user_path=None):
        self.name = "DAT"
        self.user_path = user_path
        self.scalers = []
        super().__init__()
        enabled = set(shared.opts.dat_enabled_models or [])
        by_filename = {file: (name, scale) for name, (file, scale) in known_models.items()}
        for file in self.find_models(ext_filter=model_extensions()):
            known = by_filename.get(os.path.basename(file))
            if known is not None:
                if known[0] in enabled:
                    self.scalers.append(UpscalerData(known[0], file, self, known[1]))
            else:
                self.scalers.append(UpscalerData(modelloader.friendly_name(file), file, self, 4))

    def do_upscale(self, img, path):
        model = self.load_model(path)
        return upscale_with_model(model, img, tile_size=shared.opts.DAT_tile, tile_overlap=shared.opts.DAT_tile_overlap)

    def load_model(self, path):
        return modelloader.load_upscaler_model_cached(path, device=devices.device_esrgan, prefer_half=prefer_half(), expected_architecture="DAT")
