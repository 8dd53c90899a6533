"""ESRGAN-family upscalers from models/ESRGAN (A1111: modules.esrgan_model). Only local files are listed."""
from modules import devices, modelloader, shared
from modules.upscaler import Upscaler, UpscalerData
from modules.upscaler_utils import upscale_with_model


def model_extensions():
    return [".pt", ".pth", ".safetensors"]


def prefer_half():
    return devices.device_esrgan.type == "cuda" and not shared.cmd_opts.no_half and not shared.cmd_opts.upcast_sampling


class UpscalerESRGAN(Upscaler):
    def __init__(self, dirname=None):
        self.name = "ESRGAN"
        self.model_url = None  # A1111 downloads ESRGAN_4x on first use; here a missing file is just not listed
        self.model_name = "ESRGAN_4x"
        self.scalers = []
        self.user_path = dirname
        super().__init__()
        for file in self.find_models(ext_filter=model_extensions()):
            self.scalers.append(UpscalerData(modelloader.friendly_name(file), file, self, 4))

    def do_upscale(self, img, selected_model):
        model = self.load_model(selected_model)
        return esrgan_upscale(model, img)

    def load_model(self, path: str):
        return modelloader.load_upscaler_model_cached(path, device=devices.device_esrgan, prefer_half=prefer_half(), expected_architecture="ESRGAN")


def esrgan_upscale(model, img):
    return upscale_with_model(model, img, tile_size=shared.opts.ESRGAN_tile, tile_overlap=shared.opts.ESRGAN_tile_overlap)
