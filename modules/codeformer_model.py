"""CodeFormer face restoration (A1111: modules.codeformer_model), used only when weights are in models/Codeformer
and an installed architecture can run them."""
import os

from modules import devices, face_restoration, face_restoration_models, modelloader, shared


class FaceRestorerCodeFormer(face_restoration.FaceRestoration):
    def __init__(self, model_file):
        self.model_file = model_file
        self.net = None

    def name(self):
        return "CodeFormer"

    def restore(self, np_image, w=None):
        w = shared.opts.code_former_weight if w is None else w
        if self.net is None:
            self.net = modelloader.load_spandrel_model(self.model_file, device=devices.device_codeformer, expected_architecture="CodeFormer")
        model = self.net.model

        def run(t):
            out = model(t, weight=w, adain=True)
            return out[0] if isinstance(out, tuple) else out
        result = face_restoration_models.restore_with_face_helper(np_image, run, devices.device_codeformer)
        if shared.opts.face_restoration_unload:
            self.net = None
        return result


codeformer = None


def setup_model(dirname=None):
    global codeformer
    folder = os.path.join(shared.models_path, "Codeformer")
    codeformer = face_restoration_models.setup("CodeFormer", folder, dirname or shared.cmd_opts.codeformer_models_path, FaceRestorerCodeFormer)
