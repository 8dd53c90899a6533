"""A worker's images are saved by the front: same folders, names and infotexts as a single process writes."""
import os
import pickle

from PIL import Image

from modules import processing, shared
from modules.distributed import captured_saves


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


def run_job(model, out_dir):
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=model, prompt="a red circle", steps=2, width=64, height=64, seed=42, batch_size=2,
        sampler_name="Euler a", outpath_samples=os.path.join(out_dir, "samples"), outpath_grids=os.path.join(out_dir, "grids"))
    return processing.process_images(p)


def test_saves_recorded_on_a_worker_and_replayed_by_the_front_match_a_single_process(tiny_model, tmp_path):
    direct_dir, worker_dir = str(tmp_path / "direct"), str(tmp_path / "worker")
    direct = run_job(tiny_model, direct_dir)

    with captured_saves.capture() as records:
        from_worker = run_job(tiny_model, worker_dir)
    assert not os.path.exists(worker_dir), "a worker writes nothing itself"
    assert len(records) == 3  # two samples and the grid

    # what crosses from the worker to the front: pickled
    records = pickle.loads(pickle.dumps(records))
    saved = captured_saves.replay(records)

    assert files_under(worker_dir) == files_under(direct_dir)
    assert len(files_under(direct_dir)) == 3
    for name in files_under(direct_dir):
        a = Image.open(os.path.join(direct_dir, name))
        b = Image.open(os.path.join(worker_dir, name))
        assert a.info["parameters"] == b.info["parameters"]
    assert from_worker.infotexts == direct.infotexts
    assert all(os.path.exists(path) for path in saved)


def test_an_output_folder_inside_the_workers_data_folder_lands_in_the_fronts(tiny_model, tmp_path, monkeypatch):
    with captured_saves.capture() as records:
        run_job(tiny_model, os.path.join(shared.data_path, "outputs", "from-worker"))
    assert {r.path for r in records} == {os.path.join("outputs", "from-worker", "samples"),
                                         os.path.join("outputs", "from-worker", "grids")}
    front_data = tmp_path / "front-data"  # the front on another machine, with its own data folder
    monkeypatch.setattr(shared, "data_path", str(front_data))
    captured_saves.replay(records)
    assert len(files_under(str(front_data / "outputs" / "from-worker"))) == 3


def test_only_plain_fields_of_p_travel(tiny_model):
    p = processing.StableDiffusionProcessingTxt2Img(sd_model=tiny_model, prompt="x", seed=3, styles=["s"])
    fields = captured_saves.plain_fields(p)
    assert fields.prompt == "x" and fields.seed == 3 and fields.styles == ["s"]
    assert not hasattr(fields, "sd_model")
    pickle.dumps(fields)
