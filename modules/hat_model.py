"""HAT upscalers from models/HAT (A1111: modules.hat_model); local files only, scale assumed 4 until loaded."""
from modules import devices, modelloader, shared
from modules.esrgan_model import model_extensions, prefer_half
from modules.upscaler import Upscaler, UpscalerData
from modules.upscaler_utils import upscale_with_model


class UpscalerHAT(Upscaler):
    def __init__(self, dirname=None):
        self.name = "HAT"
        self.scalers = []
        self.user_path = dirname
        super().__init__()
        for file in self.find_models(ext_filter=model_extensions()):
            self.scalers.append(UpscalerData(modelloader.friendly_name(file), file, self, 4))

    def do_upscale(self, img, selected_model):
        model = self.load_model(selected_model)
        return upscale_with_model(model, img, tile_size=shared.opts.ESRGAN_tile, tile_overlap=shared.opts.ESRGAN_tile_overlap)

    def load_model(self, path: str):
        return modelloader.load_upscaler_model_cached(path, device=devices.device_esrgan, prefer_half=prefer_half(), expected_architecture="HAT")
