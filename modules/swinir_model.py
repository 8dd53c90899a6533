"""SwinIR upscalers from models/SwinIR (A1111's built-in SwinIR extension); local files only.

The file A1111 downloads (003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth) is listed as 'SwinIR 4x'.
"""
import os

from modules import devices, modelloader, shared
from modules.esrgan_model import model_extensions, prefer_half
from modules.upscaler import Upscaler, UpscalerData
from modules.upscaler_utils import upscale_2

known_files = {"003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth": "SwinIR 4x"}


class UpscalerSwinIR(Upscaler):
    def __init__(self, dirname=None):
        self.name = "SwinIR"
        self.model_name = "SwinIR 4x"
        self.user_path = dirname
        super().__init__()
        self.scalers = []
        for file in self.find_models(ext_filter=model_extensions()):
            name = known_files.get(os.path.basename(file)) or modelloader.friendly_name(file)
            self.scalers.append(UpscalerData(name, file, self, 4))

    def do_upscale(self, img, model_file):
        model = self.load_model(model_file)
        return upscale_2(img, model, tile_size=shared.opts.SWIN_tile, tile_overlap=shared.opts.SWIN_tile_overlap, scale=model.scale, desc="SwinIR tiles")

    def load_model(self, path, scale=4):
        return modelloader.load_upscaler_model_cached(path, device=devices.device_esrgan, prefer_half=prefer_half(), expected_architecture="SwinIR")
