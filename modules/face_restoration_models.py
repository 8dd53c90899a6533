"""Finding face-restoration weights and checking that they can run; shared by gfpgan_model and codeformer_model."""
import importlib.util

from modules import face_restoration, modelloader


def find_weights(folder, user_path=None):
    return modelloader.load_models(folder, command_path=user_path, ext_filter=[".pth", ".safetensors"])


def setup(name, folder, user_path, restorer_factory):
    """Add a restorer to shared.face_restorers when its weights and the face helper are present; else note why."""
    from modules import shared
    files = find_weights(folder, user_path)
    if not files:
        face_restoration.note_unavailable(name, f"no model file in {user_path or folder}")
        return None
    if importlib.util.find_spec("facexlib") is None:
        face_restoration.note_unavailable(name, "the facexlib package (face detection) is not installed")
        return None
    restorer = restorer_factory(files[0])
    shared.face_restorers[:] = [x for x in shared.face_restorers if x.name() != name] + [restorer]
    return restorer


def restore_with_face_helper(np_image, restore_face, device):
    """Detect and align faces (facexlib), restore each 512x512 crop with `restore_face(tensor)`, paste them back."""
    import numpy as np
    import torch
    from facexlib.utils.face_restoration_helper import FaceRestoreHelper

    helper = FaceRestoreHelper(1, face_size=512, crop_ratio=(1, 1), det_model="retinaface_resnet50", save_ext="png", use_parse=True, device=device)
    helper.clean_all()
    helper.read_image(np_image[:, :, ::-1])
    helper.get_face_landmarks_5(only_center_face=False, resize=640, eye_dist_threshold=5)
    helper.align_warp_face()
    for cropped_face in helper.cropped_faces:
        t = torch.from_numpy(cropped_face[:, :, ::-1].astype(np.float32) / 255.0).permute(2, 0, 1)[None].to(device)
        t = (t - 0.5) / 0.5
        with torch.inference_mode():
            out = restore_face(t)
        out = ((out.clamp(-1, 1) + 1) / 2 * 255).round().byte()[0].permute(1, 2, 0).cpu().numpy()[:, :, ::-1]
        helper.add_restored_face(out)
    helper.get_inverse_affine(None)
    return helper.paste_faces_to_input_image()[:, :, ::-1]


