"""Face restoration registry (A1111: modules.face_restoration).

Restorers (GFPGAN, CodeFormer) list themselves in `shared.face_restorers` only when they can run: their weights
are in models/GFPGAN or models/Codeformer and the face-detection helper they need is installed. Otherwise the list
is empty and `unavailable_reason()` says what is missing, so the UI can hide face restoration with a note.
"""
from modules import shared


class FaceRestoration:
    def name(self):
        return "None"

    def restore(self, np_image):
        return np_image


_reasons = {}


def note_unavailable(name, reason):
    _reasons[name] = reason


def unavailable_reason():
    """A sentence for the UI when no face restorer is available; '' when one is."""
    if shared.face_restorers:
        return ""
    details = "; ".join(f"{k}: {v}" for k, v in _reasons.items())
    return "Face restoration is not available" + (f" ({details})." if details else ".")


def restore_faces(np_image, w=None):
    """Restore faces with the model named by the `face_restoration_model` setting; unchanged if it is absent."""
    face_restorers = [x for x in shared.face_restorers if x.name() == shared.opts.face_restoration_model or shared.opts.face_restoration_model is None]
    if len(face_restorers) == 0:
        return np_image
    face_restorer = face_restorers[0]
    if w is not None and face_restorer.name() == "CodeFormer":
        return face_restorer.restore(np_image, w=w)
    return face_restorer.restore(np_image)
