"""The twelve extensions added to the shared corpus, unmodified, doing what a user would see them do.

All twelve are copied once into a temporary extensions/ folder, loaded as the web UI loads them, and the real page is
built once (so extensions that reach the prompt box or the img2img tab find them). Each test then checks one
extension: its controls, a real txt2img generation on the tiny checkpoint with its controls set as a user would, its
infotext, the files it writes or the routes it adds. Names owned by other engineers that an extension imports make
its test skip, naming the owner, until they land.
"""
import importlib
import json
import os

import numpy as np
import pytest

from tests.extension_helpers import ExtensionSandbox, script_by_title, txt2img

SECOND_CORPUS = ["sd-dynamic-prompts", "sd-infinity-grid-generator-script", "sd-webui-freeu", "sd-webui-neutral-prompt",
                 "stable-diffusion-webui-prompt-travel", "sd-webui-mov2mov", "sd_save_intermediate_images",
                 "stable-diffusion-webui-state", "sd-webui-infinite-image-browsing",
                 "stable-diffusion-webui-dataset-tag-editor", "sd-webui-detail-daemon", "stable-diffusion-webui-rembg"]


def needs(module_name, owner):
    """Skip until another engineer's module exists (the census test lists the same rows)."""
    try:
        importlib.import_module(module_name)
    except ModuleNotFoundError:
        pytest.skip(f"{module_name} is not there yet (owner: {owner})")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from modules import shared
    from webui import ui
    monkeypatch = pytest.MonkeyPatch()
    data = tmp_path_factory.mktemp("corpus-two")
    monkeypatch.setitem(shared.opts.data, "outdir_samples", str(data / "outputs"))
    monkeypatch.setitem(shared.opts.data, "outdir_grids", str(data / "grids"))
    box = ExtensionSandbox(str(data / "extensions"), monkeypatch)
    box.add_corpus(*SECOND_CORPUS)
    # The corpus README: its optional collections/ of wildcard lists was left out of the export; a user has the folder.
    os.makedirs(os.path.join(box.root, "sd-dynamic-prompts", "collections"), exist_ok=True)
    shared.opts.save(shared.config_filename)  # written at start-up (State reads it)
    box.load()
    box.demo = ui.create_ui()
    box.data = data
    yield box
    box.close()
    monkeypatch.undo()


def reports_for(corpus, folder):
    return [m for m in corpus.reports.messages if f"/{folder}/" in m or f"extension {folder}" in m]


def pixels(image):
    return np.asarray(image.convert("RGB")).astype(np.float64)


def args_by_label(title, values):
    """{(title, control index): value} from {control label: value} of one script."""
    script = script_by_title(title)
    labels = [getattr(c, "label", None) for c in script.controls]
    return {(title, labels.index(label)): value for label, value in values.items()}


def app_client():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from modules import script_callbacks
    app = FastAPI()
    script_callbacks.app_started_callback(None, app)
    return TestClient(app)


def test_dynamic_prompts_gives_each_image_its_own_variant_and_reads_wildcards(corpus, tiny_model):
    from modules import script_callbacks, scripts, shared
    assert reports_for(corpus, "sd-dynamic-prompts") == []
    title = next(s.title() for s in scripts.scripts_txt2img.scripts if s.title().startswith("Dynamic Prompts"))
    wildcards = os.path.join(corpus.root, "sd-dynamic-prompts", "wildcards")
    os.makedirs(wildcards, exist_ok=True)
    with open(os.path.join(wildcards, "shape.txt"), "w") as file:
        file.write("circle\nsquare\n")
    combinatorial = txt2img(tiny_model, {(title, 0): True, (title, 1): True}, prompt="a {red|green|blue} ball",
                            batch_size=3, steps=1)
    assert sorted(combinatorial.all_prompts) == ["a blue ball", "a green ball", "a red ball"]
    assert len(combinatorial.images) == 3
    # Random mode (combinatorial off): every image gets its own draw; the template goes into the infotext when asked.
    with pytest.MonkeyPatch.context() as m:
        m.setitem(shared.opts.data, "dp_write_raw_template", True)
        wild = txt2img(tiny_model, {(title, 0): True}, prompt="a red __shape__", batch_size=4, steps=1)
    assert set(wild.all_prompts) <= {"a red circle", "a red square"} and len(wild.all_prompts) == 4
    assert "Template: a red __shape__" in wild.infotexts[0]
    tab_titles = [t[1] for t in script_callbacks.ui_tabs_callback()]
    assert "Wildcards Manager" in tab_titles


@pytest.fixture
def sd_width_model(tmp_path_factory):
    """A checkpoint whose UNet output blocks are 640 channels wide, one of the SD1 widths FreeU acts on (the tiny
    checkpoint's 32/64 are not)."""
    from modules import sd_models
    from tests.checkpoint_factory import TINY_UNET, build_random_model, model_state_dict, save_state_dict
    path = str(tmp_path_factory.mktemp("freeu") / "sd-width.safetensors")
    save_state_dict(model_state_dict(build_random_model(unet={**TINY_UNET, "model_channels": 640, "channel_mult": (1,),
                                                                "attention_resolutions": []})), path)
    sd_models.load_model(sd_models.CheckpointInfo(path))
    from modules import shared
    yield shared.sd_model


def test_freeu_changes_the_image_at_the_same_seed_and_writes_its_infotext(corpus, sd_width_model):
    assert reports_for(corpus, "sd-webui-freeu") == []
    plain = txt2img(sd_width_model, steps=2)
    free_u = txt2img(sd_width_model, {("FreeU", 0): True}, steps=2)
    assert not np.array_equal(pixels(plain.images[0]), pixels(free_u.images[0]))
    info = free_u.infotexts[0]
    assert "FreeU Stages:" in info and "FreeU Schedule:" in info and "FreeU Version:" in info
    assert "FreeU" not in plain.infotexts[0]
    again = txt2img(sd_width_model, steps=2)  # switched off again: the UNet is as before
    assert np.array_equal(pixels(plain.images[0]), pixels(again.images[0]))


def test_neutral_prompt_keywords_change_the_image(corpus, tiny_model):
    assert reports_for(corpus, "sd-webui-neutral-prompt") == []
    plain_and = txt2img(tiny_model, prompt="a red circle AND a blue square", steps=3)
    perpendicular = txt2img(tiny_model, prompt="a red circle AND_PERP a blue square", steps=3)
    assert not np.array_equal(pixels(plain_and.images[0]), pixels(perpendicular.images[0]))


def test_detail_daemon_adds_detail_and_writes_its_infotext(corpus, tiny_model):
    assert reports_for(corpus, "sd-webui-detail-daemon") == []
    title = "Detail Daemon"
    plain = txt2img(tiny_model, steps=4)
    # Controls: 0 the accordion's switch, then per daemon tab: 1 Active, 2 Hires, 3 mode, 4 start, 5 end, 6 bias, 7 amount
    detailed = txt2img(tiny_model, {(title, 0): True, (title, 1): True, (title, 7): 0.5}, steps=4)
    assert not np.array_equal(pixels(plain.images[0]), pixels(detailed.images[0]))
    assert "Detail Daemon:" in detailed.infotexts[0]


def test_save_intermediate_images_writes_every_nth_step(corpus, tiny_model, tmp_path):
    assert reports_for(corpus, "sd_save_intermediate_images") == []
    title = "Save intermediate images during the sampling process"
    # Controls: 0 active, 4 "Save every N images", 5 start at, 6 stop at (numbers, as the page sends them)
    processed = txt2img(tiny_model, {(title, 0): True, (title, 4): 1, (title, 5): 0, (title, 6): 0}, steps=4, do_not_save_samples=False,
                        outpath_samples=str(tmp_path))
    saved = [os.path.join(root, f) for root, _, files in os.walk(tmp_path) for f in files if f.endswith(".png")]
    intermediates = [f for f in saved if "intermediates" in f]
    assert processed.images and len(intermediates) >= 2, saved


def test_infinity_grid_writes_the_images_and_its_web_viewer(corpus, tiny_model, tmp_path):
    assert reports_for(corpus, "sd-infinity-grid-generator-script") == []
    from modules import scripts
    runner = scripts.scripts_txt2img
    title = "Generate Infinite-Axis Grid"
    script = script_by_title(title)
    labels = [getattr(c, "label", None) for c in script.controls]
    values = {"Axis 1 Mode": "Steps", "Axis 1 Value": "1, 2", "Axis 2 Mode": "CFG Scale", "Axis 2 Value": "5, 7",
              "Output folder name (if blank uses yaml's 'outpath' parameter, filename, or current date)": "grid-test"}
    overrides = {(title, labels.index(label)): value for label, value in values.items()}
    from tests.extension_helpers import script_args_with
    args = script_args_with(runner, overrides)
    args[0] = runner.selectable_scripts.index(script) + 1
    from modules import processing
    p = processing.StableDiffusionProcessingTxt2Img(sd_model=tiny_model, prompt="a red circle", steps=2, width=64, height=64,
                                                    seed=1, sampler_name="Euler", outpath_grids=str(tmp_path))
    p.scripts = runner
    p.script_args = args
    runner.run(p, *args)
    folder = os.path.join(str(tmp_path), "grid-test")
    assert os.path.isfile(os.path.join(folder, "index.html"))
    images = [f for _, _, files in os.walk(folder) for f in files if f.endswith((".png", ".jpg", ".webp"))]
    assert len(images) >= 4


def test_infinite_image_browsing_serves_its_app(corpus):
    assert reports_for(corpus, "sd-webui-infinite-image-browsing") == []
    client = app_client()
    assert client.get("/infinite_image_browsing/hello").json() == "hello"
    assert client.get("/infinite_image_browsing").status_code == 200
    tab_titles = [t[1] for t in __import__("modules.script_callbacks").script_callbacks.ui_tabs_callback()]
    assert "Infinite image browsing" in tab_titles


def test_state_serves_its_config(corpus):
    assert reports_for(corpus, "stable-diffusion-webui-state") == []
    config = app_client().get("/state/config.json").json()
    assert "state" in config or config  # the fields to remember, chosen in Settings


def test_dataset_tag_editor_tab_is_there(corpus):
    """It imports ldm.modules.encoders.modules.FrozenOpenCLIPEmbedder and modules.lowvram at load."""
    from modules import script_callbacks
    assert reports_for(corpus, "stable-diffusion-webui-dataset-tag-editor") == []
    assert "Dataset Tag Editor" in [t[1] for t in script_callbacks.ui_tabs_callback()]


def test_prompt_travel_writes_interpolated_frames(corpus, tiny_model, tmp_path):
    needs("modules.lowvram", "perf")
    # Its second script, ControlNet Travel, annotates a function with a ControlNet class it could not import, so
    # without ControlNet it fails to load, under A1111 as here; Prompt Travel itself loads.
    [report] = reports_for(corpus, "stable-diffusion-webui-prompt-travel")
    assert "controlnet_travel.py" in report and "name 'UnetHook' is not defined" in report
    from modules import processing, scripts
    from tests.extension_helpers import script_args_with
    runner = scripts.scripts_txt2img
    script = script_by_title("Prompt Travel")
    # Controls: 0 mode (linear), 1 interpolation, ..., 4 "Travel steps between stages"
    args = script_args_with(runner, {("Prompt Travel", 4): "3"})
    args[0] = runner.selectable_scripts.index(script) + 1
    p = processing.StableDiffusionProcessingTxt2Img(sd_model=tiny_model, prompt="a red circle\na blue square", steps=2,
                                                    width=64, height=64, seed=1, sampler_name="Euler",
                                                    outpath_samples=str(tmp_path), do_not_save_grid=True)
    p.scripts = runner
    p.script_args = args
    processed = runner.run(p, *args)
    travel = tmp_path / "prompt_travel" / "00000"
    frames = [f for _, _, files in os.walk(travel) for f in files if f.endswith(".png")]
    assert os.path.isfile(travel / "travel-00000.mp4")  # and the frames as a video (moviepy)
    # 3 travel steps from one stage to the next: both prompts' pictures and two frames between them
    assert len(processed.images) == 4 and len(frames) == 4
    first, between, last = pixels(processed.images[0]), pixels(processed.images[1]), pixels(processed.images[3])
    assert not np.array_equal(first, last) and not np.array_equal(between, first)


def test_rembg_extras_section_and_route_reach_the_model_download(corpus, monkeypatch, tmp_path):
    needs("modules.api.api", "api")
    from modules import scripts
    from modules.api import api
    from PIL import Image
    assert reports_for(corpus, "stable-diffusion-webui-rembg") == []
    rembg_script = next(s for s in scripts.scripts_postproc.scripts if s.name == "Rembg")
    dropdown = rembg_script.controls["model"]
    assert dropdown.label == "Remove background" and dropdown.value == "None" and "u2net" in [c[1] for c in dropdown.choices]
    client = app_client()
    picture = api.encode_pil_to_base64(Image.new("RGB", (32, 32), "red")).decode()
    # "None" (its default) leaves the image alone.
    assert client.post("/rembg", json={"input_image": picture, "model": "None"}).json() is None
    # A real model is fetched on first use; this machine has no network, so the user gets the download error.
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    with pytest.raises(Exception) as failure:
        client.post("/rembg", json={"input_image": picture, "model": "u2net"})
    assert "u2net.onnx" in str(failure.value) or "u2net" in repr(failure.value)


def write_video(path, frames, size=64, fps=10):
    """A short mp4 (a red disc moving across white), as a user's clip."""
    import cv2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    for i in range(frames):
        frame = np.full((size, size, 3), 255, np.uint8)
        cv2.circle(frame, (16 + 12 * i, size // 2), 12, (0, 0, 255), -1)
        writer.write(frame)
    writer.release()


def frame_count(path):
    import cv2
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def sent_values(dependency, given, from_javascript=()):
    """What the page sends for an event's inputs: `from_javascript` (the first values, which the event's javascript
    puts in), then each component's untouched value with `given` ({elem_id: value}) typed in, as Gradio hands them
    to the function (preprocessed)."""
    values = list(from_javascript)
    for component in dependency.inputs[len(values):]:
        if component.elem_id in given:
            values.append(given[component.elem_id])
        else:
            values.append(component.preprocess(component.postprocess(component.value)))
    return values


def test_mov2mov_tab_turns_a_video_into_a_video(corpus, monkeypatch, tmp_path):
    import gradio as gr
    from gradio.helpers import special_args
    from modules import sd_models
    from tests.api_helpers import DEMO_CHECKPOINT
    assert reports_for(corpus, "sd-webui-mov2mov") == []
    # The "mov2mov" tab sits right after img2img, with its own prompt row, video input and Generate button.
    tabs = corpus.demo.ui_context.tabs_component
    tab_ids = [child.elem_id for child in tabs.children]
    assert tab_ids[tab_ids.index("tab_img2img") + 1] == "tab_mov2mov"
    blocks = {block.elem_id: block for block in corpus.demo.blocks.values() if getattr(block, "elem_id", None)}
    assert {"mov2mov_prompt", "mov2mov_mov", "mov2mov_generate", "mov2mov_video"} <= set(blocks)
    assert tabs.parent is not tabs  # the page's tabs closed properly although mov2mov re-entered them

    sd_models.load_model(sd_models.CheckpointInfo(DEMO_CHECKPOINT))
    monkeypatch.chdir(tmp_path)  # its default output folder, outputs/mov2mov-videos, is relative to where the app runs
    video = tmp_path / "clip.mp4"
    write_video(video, frames=3)
    generate = blocks["mov2mov_generate"]
    dependency = next(d for d in corpus.demo.fns.values() if (generate._id, "click") in [tuple(t) for t in d.targets])
    values = sent_values(dependency, {"mov2mov_prompt": "a large red circle in the centre on a white background",
                                      "mov2mov_mov": str(video), "mov2mov_width": 64, "mov2mov_height": 64,
                                      "mov2mov_denoising_strength": 0.2},
                         from_javascript=["task(mov2mov-test)", 2])  # submit_mov2mov(): task id, tab index
    args, *_ = special_args(dependency.fn, values, gr.Request(username=None))
    result_video, generation_info, _, html_log = dependency.fn(*args)
    assert "error" not in html_log
    assert os.path.dirname(result_video) == os.path.join("outputs", "mov2mov-videos")
    assert frame_count(tmp_path / result_video) == 3
    assert json.loads(generation_info)["width"] == 64
