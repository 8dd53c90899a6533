"""The model loaded at start-up."""
from modules import initialize, loaded_models, sd_models, shared
from tests.checkpoint_factory import make_tiny_sd1_checkpoint


def test_a_broken_first_checkpoint_does_not_leave_the_app_without_a_model(tmp_path, monkeypatch, capsys):
    (tmp_path / "a-broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    good = make_tiny_sd1_checkpoint(str(tmp_path / "b-good.safetensors"))
    monkeypatch.setattr(sd_models, "checkpoints_list", {})
    monkeypatch.setattr(sd_models, "checkpoint_aliases", {})
    monkeypatch.setattr(loaded_models, "loaded", [])
    monkeypatch.setitem(shared.opts.data, "sd_model_checkpoint", None)
    for name in ("a-broken.safetensors", "b-good.safetensors"):
        sd_models.CheckpointInfo(str(tmp_path / name)).register()
    try:
        initialize.load_model()
        assert shared.sd_model is not None and shared.sd_model.sd_checkpoint_info.filename == good
        err = capsys.readouterr()
        assert "a-broken.safetensors" in err.err and "Loaded b-good.safetensors" in err.out
    finally:
        sd_models.unload_model_weights()
