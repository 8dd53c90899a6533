"""GFPGAN face restoration (A1111: modules.gfpgan_model), used only when weights are in models/GFPGAN."""
import os

from modules import devices, face_restoration, face_restoration_models, modelloader, shared


class FaceRestorerGFPGAN(face_restoration.FaceRestoration):
    def __init__(self, model_file):
        self.model_file = model_file
        self.net = None

    def name(self):
        return "GFPGAN"

    def restore(self, np_image):
        if self.net is None:
            self.net = modelloader.load_spandrel_model(self.model_file, device=devices.device_gfpgan, expected_architecture="GFPGAN")
        model = self.net.model

        def run(t):
            out = model(t)
            return out[0] if isinstance(out, tuple) else out
        result = face_restoration_models.restore_with_face_helper(np_image, run, devices.device_gfpgan)
        if shared.opts.face_restoration_unload:
            self.net = None
        return result


gfpgan_face_restorer = None


def gfpgan_fix_faces(np_image):
    if gfpgan_face_restorer is None:
        return np_image
    return gfpgan_face_restorer.restore(np_image)


def setup_model(dirname=None):
    global gfpgan_face_restorer
    folder = os.path.join(shared.models_path, "GFPGAN")
    gfpgan_face_restorer = face_restoration_models.setup("GFPGAN", folder, dirname or shared.cmd_opts.gfpgan_models_path, FaceRestorerGFPGAN)
