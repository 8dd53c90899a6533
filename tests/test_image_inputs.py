"""An image input given a file that is not a readable image says which input and which file (Gradio alone shows a
bare "Error")."""
import gradio as gr
import pytest
from gradio.data_classes import ImageData

from webui.image_input import ImageInput


@pytest.mark.parametrize("content", [b"", b"hello", b"\x89PNG\r\n\x1a\n" + b"garbage" * 100])
@pytest.mark.parametrize("kind", ["pil", "filepath"])
def test_an_unreadable_upload_is_refused_by_name(tmp_path, content, kind):
    path = tmp_path / "holiday.png"
    path.write_bytes(content)
    image = ImageInput(label="Image for img2img", type=kind)
    with pytest.raises(gr.Error, match=r"Image for img2img: cannot read holiday\.png as an image"):
        image.preprocess(ImageData(path=str(path), orig_name="holiday.png"))


def test_a_readable_upload_still_arrives(tmp_path):
    from PIL import Image
    path = tmp_path / "ok.png"
    Image.new("RGB", (8, 6)).save(path)
    assert ImageInput(label="x", type="pil", image_mode="RGBA").preprocess(ImageData(path=str(path))).size == (8, 6)
