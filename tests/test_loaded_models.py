"""Several checkpoints kept loaded (sd_checkpoints_limit): switching back moves the kept model instead of reading
the file, the models not in use rest in RAM (recorded moves: there is no GPU here), the least recently used goes."""
import numpy as np
import pytest
import torch

from modules import loaded_models, lowvram, processing, sd_models, shared
from tests import checkpoint_factory as factory

RAM = torch.device("meta")  # stands for the CPU side of a GPU machine: moves are recorded, not done


@pytest.fixture
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kept")
    return [factory.make_tiny_sd1_checkpoint(str(d / f"model{i}.safetensors"), seed=i) for i in range(3)]


@pytest.fixture
def where(monkeypatch):
    location = {}

    def record(module, device):
        for m in module.modules():
            location[id(m)] = device
    monkeypatch.setattr(lowvram, "move", record)
    monkeypatch.setattr(lowvram, "cpu", RAM)
    sd_models.unload_model_weights()
    monkeypatch.setattr(loaded_models, "loaded", [])
    yield lambda model: "ram" if location.get(id(model.model)) == RAM else "device"
    sd_models.unload_model_weights()


def picture(model):
    p = processing.StableDiffusionProcessingTxt2Img(sd_model=model, prompt="a red circle", steps=2, width=64, height=64,
                                                    seed=3, sampler_name="Euler", do_not_save_samples=True,
                                                    do_not_save_grid=True)
    return np.asarray(processing.process_images(p).images[0])


def test_switching_back_to_a_kept_checkpoint_reads_no_file(files, where, monkeypatch):
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 2)
    a = sd_models.load_model(sd_models.CheckpointInfo(files[0]))
    first = picture(a)
    b = sd_models.reload_model_weights(info=sd_models.CheckpointInfo(files[1]))
    assert b is shared.sd_model and b is not a
    assert sd_models.model_data.loaded_sd_models == [b, a]
    assert where(a) == "ram"  # the kept model rests in RAM, not on the device

    def no_reading(*args, **kwargs):
        raise AssertionError("the kept checkpoint was read again")
    monkeypatch.setattr(sd_models, "read_state_dict", no_reading)
    again = sd_models.reload_model_weights(info=sd_models.CheckpointInfo(files[0]))
    assert again is a and shared.sd_model is a
    assert where(a) == "device" and where(b) == "ram"
    assert shared.opts.sd_model_checkpoint == a.sd_checkpoint_info.title
    assert np.array_equal(picture(a), first)  # its prompt hijack and VAE came back with it


def test_the_least_recently_used_goes_beyond_the_limit(files, where, monkeypatch):
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 2)
    a, b = (sd_models.reload_model_weights(info=sd_models.CheckpointInfo(f)) for f in files[:2])
    sd_models.reload_model_weights(info=sd_models.CheckpointInfo(files[0]))  # a is used again: b is the oldest
    c = sd_models.reload_model_weights(info=sd_models.CheckpointInfo(files[2]))
    assert loaded_models.loaded == [c, a]


def test_with_a_limit_of_one_the_previous_model_is_unloaded(files, where, monkeypatch):
    monkeypatch.setitem(shared.opts.data, "sd_checkpoints_limit", 1)
    sd_models.load_model(sd_models.CheckpointInfo(files[0]))
    b = sd_models.reload_model_weights(info=sd_models.CheckpointInfo(files[1]))
    assert loaded_models.loaded == [b]
