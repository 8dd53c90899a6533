"""One web UI server for the browser tests that need nothing but a plain server (no flags, no extensions of their own,
no restart): the `shared_webui` fixture (tests/conftest.py) starts it when the first test asks for it and stops it at
the end of the session. A start costs 15-30 s of CPU; sharing one saves minutes of the default suite.

Its data folder holds what all those tests read, built once before the start. The tests share the server's state, so
each one picks the checkpoint it needs in the page (`use_checkpoint`) and finds the pictures it saved by what it asked
for (`new_pngs`), never by which model is loaded or which file is newest."""
import os
import re
import shutil

from tests.checkpoint_factory import make_family_checkpoint, make_tiny_sd1_checkpoint
from tests.webui_server import WebuiServer, copy_into, pick_option, set_number, wait_until_settings_are_current

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "models", "Stable-diffusion", "demo-shapes.safetensors")
DEMO_LORA = os.path.join(ROOT, "models", "Lora", "demo-turquoise")

# The checkpoint the server starts with: a user's own, chosen over the built-in demo model listed before it. A new
# page is built showing it and then shows the model loaded now; no test picks it, so a dropdown still showing it
# has not had that update yet, and `use_checkpoint` picking another model always reaches the server.
STARTUP_CHECKPOINT = "sd1-startup.safetensors"


def embedding(path, width=64):
    """A textual-inversion file for the demo model's 64-wide text encoder."""
    import torch
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save({"string_to_param": {"*": torch.randn(1, width)}, "name": os.path.basename(path)[:-3], "step": 1}, path)


def demo_variant_with_swapped_words(path, first, second):
    """The demo checkpoint with the token embeddings of two words swapped: a variant that draws `second` when asked
    for `first`."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from modules.clip_tokenizer import load_clip_tokenizer
    tokenizer = load_clip_tokenizer()
    a, b = (tokenizer(word, add_special_tokens=False)["input_ids"][0] for word in (first, second))
    with safe_open(DEMO, framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    key = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
    table = state[key].clone()
    table[[a, b]] = table[[b, a]]
    state[key] = table
    save_file(state, str(path), metadata=metadata)


def build_data_folder(data):
    """Everything the sharing tests read; which test uses what is said beside it."""
    sd_dir = data / "models" / "Stable-diffusion"
    (sd_dir / "styles").mkdir(parents=True)
    # listed first (natural order), yet the start-up model is the user's own STARTUP_CHECKPOINT (extra networks)
    shutil.copy(DEMO, sd_dir / "demo-shapes.safetensors")
    make_tiny_sd1_checkpoint(str(sd_dir / STARTUP_CHECKPOINT), seed=2)
    make_tiny_sd1_checkpoint(str(sd_dir / "tiny.safetensors"))  # txt2img, image drag, inpaint, SDXL's SD1 size
    make_tiny_sd1_checkpoint(str(sd_dir / "tiny-a.safetensors"), seed=10)  # merge
    make_tiny_sd1_checkpoint(str(sd_dir / "tiny-b.safetensors"), seed=11)
    shutil.copy(DEMO, sd_dir / "shapes-a.safetensors")  # merge of two demo variants
    demo_variant_with_swapped_words(sd_dir / "shapes-b.safetensors", "red", "blue")
    make_family_checkpoint(sd_dir / "xl-base.safetensors", "sdxl")  # SDXL and its refiner
    make_family_checkpoint(sd_dir / "xl-refiner.safetensors", "sdxl_refiner")
    # extra networks: a checkpoint with a preview in a subfolder, embeddings (one in a subfolder), the demo LoRA's card
    shutil.copy(DEMO, sd_dir / "styles" / "other.safetensors")
    from PIL import Image
    Image.new("RGB", (32, 32), (0, 120, 255)).save(sd_dir / "styles" / "other.preview.png")
    for name in ("embeddings/ink.pt", "embeddings/alpha.pt", "embeddings/sub/zeta.pt"):
        embedding(str(data / name))
    for suffix in (".safetensors", ".json", ".preview.png"):
        copy_into(DEMO_LORA + suffix, data / "models" / "Lora")
    return data


def start(data):
    """`with start(folder) as server:` the shared server on a data folder built in `folder`."""
    return WebuiServer(build_data_folder(data))


def use_checkpoint(page, name, timeout=120000):
    """Pick the checkpoint `name` (its file name, as the dropdown lists it) in the quicksettings row, as a user
    would, and wait until the server has it loaded."""
    from playwright.sync_api import expect
    wait_until_settings_are_current(page)
    if page.locator("#setting_sd_model_checkpoint input").input_value().startswith(name):
        return  # the page shows the model the server has now (filled in as the page loads)
    pick_option(page, "setting_sd_model_checkpoint", name)
    expect(page.locator("#sd_checkpoint_status")).to_contain_text(f"Loaded {name}", timeout=timeout)


def generate_on_tiny(page, prompt, **numbers):
    """On an open page: pick the tiny checkpoint, type `prompt`, set the txt2img number fields given (width=64 ->
    #txt2img_width) and press Generate; returns the infotext locator (wait on it for the result)."""
    use_checkpoint(page, "tiny.safetensors")
    page.locator("#txt2img_prompt textarea").fill(prompt)
    for name, value in numbers.items():
        set_number(page, f"txt2img_{name}", value)
    page.locator("#txt2img_generate").click()
    return page.locator("#html_info_txt2img")


def pngs_under(folder):
    """Every PNG under `folder` (its dated subfolders included), as a set of paths."""
    return {os.path.join(d, f) for d, _, files in os.walk(folder) for f in files if f.endswith(".png")}


def infotext(path):
    from PIL import Image
    with Image.open(path) as image:
        return image.info.get("parameters", "")


def new_pngs(folder, before, mark):
    """The PNGs under `folder` that were not in `before` and whose infotext contains `mark` (the test's own prompt,
    seed or model), sorted: what one test saved, whatever other tests saved there."""
    return sorted(path for path in pngs_under(folder) - before if mark in infotext(path))


def next_number_before(path):
    """The counter A1111 gives the next picture saved beside `path`: one more than the highest among the other
    files there (0 in an empty folder)."""
    folder, name = os.path.split(path)
    numbers = [int(m.group(1)) for other in os.listdir(folder) if other != name and (m := re.match(r"(\d+)-", other))]
    return max(numbers, default=-1) + 1
