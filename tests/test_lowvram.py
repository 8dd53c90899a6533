"""--medvram, --lowvram and automatic placement: which part of the model sits on the GPU at each stage of a job.

There is no GPU here, so a recording device stands in: every move the memory modes make is recorded (and not done),
"gpu" being the device the model runs on and "ram" where parts rest. Snapshots are taken as each part starts to run.
The CUDA runs of the same modes (real moves, real VRAM) are in test_cuda_paths.py.
"""
import numpy as np
import pytest
import torch

from modules import devices, lowvram, memory_placement, processing, sd_models, shared
from tests import checkpoint_factory as factory

RAM = torch.device("meta")  # stands for the CPU side: nothing is really moved


@pytest.fixture
def recorder(monkeypatch):
    """Records where every module was last sent; returns where(module) -> "gpu" | "ram"."""
    location = {}

    def record(module, device):
        for m in module.modules():
            location[id(m)] = device

    monkeypatch.setattr(lowvram, "move", record)
    monkeypatch.setattr(lowvram, "cpu", RAM)
    monkeypatch.setattr(lowvram, "module_in_gpu", None)

    def where(module):
        device = location.get(id(module))
        if device is None:
            return "not moved"
        return "ram" if device == RAM else "gpu"
    return where


@pytest.fixture
def fresh_model(tiny_checkpoint_path, monkeypatch):
    """A tiny model (SD1, or the checkpoint at `path`) loaded with the memory-mode flags the test sets first; unloaded
    afterwards."""
    def load(path=tiny_checkpoint_path, **flags):
        for name in ("medvram", "lowvram", "medvram_sdxl"):
            monkeypatch.setattr(shared.cmd_opts, name, flags.get(name, False))
        return sd_models.load_model(sd_models.CheckpointInfo(str(path)))
    yield load
    sd_models.unload_model_weights()


@pytest.fixture(scope="module")
def plain_picture(tiny_checkpoint_path):
    """The tiny SD1 model's txt2img picture without a memory mode (each mode's test compares its own with it)."""
    model = sd_models.load_model(sd_models.CheckpointInfo(tiny_checkpoint_path))
    assert not model.lowvram
    picture = txt2img(model)
    sd_models.unload_model_weights()
    return picture


def parts(model):
    return {"text encoder": model.cond_stage_model.wrapped if hasattr(model.cond_stage_model, "wrapped") else model.cond_stage_model,
            "UNet": model.model, "VAE": model.first_stage_model}


def snapshot_at(module, snapshots, label, what):
    def hook(*_):
        snapshots.append((label, what()))
    module.register_forward_pre_hook(hook)


def txt2img(model, seed=5):
    p = processing.StableDiffusionProcessingTxt2Img(sd_model=model, prompt="a red circle", steps=2, width=64,
                                                    height=64, seed=seed, sampler_name="Euler", do_not_save_samples=True,
                                                    do_not_save_grid=True)
    return np.asarray(processing.process_images(p).images[0])


def test_medvram_moves_text_encoder_unet_and_vae_to_the_gpu_one_at_a_time(recorder, fresh_model, plain_picture):
    model = fresh_model(medvram=True)
    assert model.lowvram and lowvram.is_enabled(model) and not shared.parallel_processing_allowed
    assert model.device == devices.device  # where it runs, though its weights rest in RAM
    named = parts(model)
    # loading encodes the empty prompt (the text encoder has visited the GPU); the UNet and VAE rest in RAM
    assert {name: recorder(m) for name, m in named.items()} == {"text encoder": "gpu", "UNet": "ram", "VAE": "ram"}
    assert recorder(model.model.diffusion_model.out) == "ram"  # inside the UNet: it moves with it

    snapshots = []
    state = lambda: {name: recorder(m) for name, m in named.items()}  # noqa: E731
    snapshot_at(named["text encoder"].transformer, snapshots, "text encoder runs", state)
    snapshot_at(model.model, snapshots, "UNet runs", state)
    snapshot_at(model.first_stage_model.decoder, snapshots, "VAE decodes", state)
    assert np.array_equal(txt2img(model), plain_picture)  # the hooks change no pixel
    seen = dict(snapshots)
    assert seen["text encoder runs"] == {"text encoder": "gpu", "UNet": "ram", "VAE": "ram"}
    assert seen["UNet runs"] == {"text encoder": "ram", "UNet": "gpu", "VAE": "ram"}
    assert seen["VAE decodes"] == {"text encoder": "ram", "UNet": "ram", "VAE": "gpu"}

    lowvram.send_everything_to_cpu()
    assert state() == {"text encoder": "ram", "UNet": "ram", "VAE": "ram"} and lowvram.module_in_gpu is None


def test_lowvram_moves_the_unet_block_by_block(recorder, fresh_model, plain_picture):
    model = fresh_model(lowvram=True)
    unet = model.model.diffusion_model
    blocks = [unet.time_embed, *unet.input_blocks, unet.middle_block, *unet.output_blocks]
    assert recorder(unet.out) == "gpu"  # the small rest of the UNet stays on the GPU
    snapshots = []
    for i, block in enumerate(blocks):
        snapshot_at(block, snapshots, i, lambda: [recorder(b) for b in blocks])
    snapshot_at(model.first_stage_model.decoder, snapshots, "VAE", lambda: [recorder(b) for b in blocks] + [recorder(model.first_stage_model)])
    assert np.array_equal(txt2img(model), plain_picture)
    running = [(label, state) for label, state in snapshots if label != "VAE"]
    assert len(running) >= len(blocks) * 2  # two steps
    for i, state in running:
        assert state[i] == "gpu" and state.count("gpu") == 1, f"block {i} runs with {state}"
    vae_state = dict(snapshots)["VAE"]
    assert vae_state[-1] == "gpu" and vae_state[:-1].count("gpu") == 0


def test_medvram_sdxl_moves_an_sdxl_models_parts_in_turn_and_leaves_other_models_whole(recorder, fresh_model, tmp_path):
    sd1 = fresh_model(medvram_sdxl=True)
    assert not sd1.lowvram and shared.parallel_processing_allowed  # an SD1 model: the flag does not apply
    assert recorder(sd1.model) == "not moved"

    path, _ = factory.make_family_checkpoint(tmp_path / "xl.safetensors", "sdxl")
    model = fresh_model(path, medvram_sdxl=True)
    assert model.is_sdxl and model.lowvram and not shared.parallel_processing_allowed
    named = {"text encoders": model.conditioner, "UNet": model.model, "VAE": model.first_stage_model}
    state = lambda: {name: recorder(m) for name, m in named.items()}  # noqa: E731
    snapshots = []
    for embedder in model.conditioner.embedders[:2]:  # both text encoders (CLIP ViT-L, OpenCLIP bigG) visit together
        snapshot_at(embedder, snapshots, f"{type(embedder).__name__} runs", state)
    snapshot_at(model.model, snapshots, "UNet runs", state)
    snapshot_at(model.first_stage_model.decoder, snapshots, "VAE decodes", state)
    txt2img(model)
    seen = dict(snapshots)
    assert len(seen) == 4, seen
    for label, where in seen.items():
        expected = {"text encoders": "ram", "UNet": "ram", "VAE": "ram"}
        expected[{"UNet runs": "UNet", "VAE decodes": "VAE"}.get(label, "text encoders")] = "gpu"
        assert where == expected, label


# ---- automatic placement ------------------------------------------------------------------------------------------

def test_placement_keeps_unet_blocks_first_and_leaves_room_for_the_largest_visitor():
    Unit = memory_placement.Unit
    units = [Unit("text encoder", 300, 1), Unit("VAE", 100, 1), Unit("UNet a", 200, 2), Unit("UNet b", 400, 2),
             Unit("UNet c", 100, 2)]
    assert memory_placement.choose_resident(units, 10_000) == {u.name for u in units}
    # 700 bytes: UNet b (400) + the largest visitor (300, the text encoder) fit; then UNet a would leave no room
    assert memory_placement.choose_resident(units, 700) == {"UNet b"}
    assert memory_placement.choose_resident(units, 1000) == {"UNet b", "UNet a", "UNet c"}
    assert memory_placement.choose_resident(units, 100) == set()


def test_automatic_placement_streams_only_what_does_not_fit(recorder, fresh_model, monkeypatch, capsys):
    model = fresh_model()
    assert not model.lowvram  # on this CPU everything "fits"
    sd_models.unload_model_weights()
    model = fresh_model()
    unet = model.model.diffusion_model
    blocks = [unet.time_embed, *unet.input_blocks, unet.middle_block, *unet.output_blocks]
    sizes = [memory_placement.tensor_bytes(b) for b in blocks]
    rest = memory_placement.tensor_bytes(model) - sum(sizes) - memory_placement.tensor_bytes(model.first_stage_model) \
        - memory_placement.tensor_bytes(model.cond_stage_model)
    # room for the small rest, every UNet block, and one visitor the size of the text encoder: the VAE waits in RAM
    budget = rest + sum(sizes) + memory_placement.tensor_bytes(model.cond_stage_model)
    monkeypatch.setattr(memory_placement, "budget_for", lambda sd_model, device: budget)
    lowvram.setup_automatic_placement(model)
    assert "parts" in capsys.readouterr().out
    assert [recorder(b) for b in blocks] == ["gpu"] * len(blocks)
    assert recorder(model.first_stage_model) == "ram"
    snapshots = []
    snapshot_at(model.first_stage_model.decoder, snapshots, "VAE", lambda: [recorder(b) for b in blocks] + [recorder(model.first_stage_model)])
    txt2img(model)
    assert dict(snapshots)["VAE"] == ["gpu"] * (len(blocks) + 1)
