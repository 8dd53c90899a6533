"""DeepDanbooru image tagging (A1111: modules.deepbooru), which extensions reach as `deepbooru.model`.

A1111 downloads the DeepDanbooru network on first use; this program downloads nothing at run time and does not
include that network, so every call that would tag an image says so by name instead of failing somewhere deeper.
"""
import re

re_special = re.compile(r"([\\()])")  # characters A1111 escapes in tags ("deepbooru_escape")

UNAVAILABLE = ("DeepDanbooru tagging is not available: its model (model-resnet_custom_v3.pt) is downloaded by "
               "A1111 on first use, and this program neither downloads models nor includes that network.")


class DeepDanbooru:
    def __init__(self):
        self.model = None

    def load(self):
        raise RuntimeError(UNAVAILABLE)

    def start(self):
        self.load()

    def stop(self):
        pass

    def tag(self, pil_image):
        self.load()

    def tag_multi(self, pil_image, force_disable_ranks=False):
        self.load()


model = DeepDanbooru()
