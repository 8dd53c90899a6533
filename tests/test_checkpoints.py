"""Checkpoints: finding, naming, hashing, detecting, loading (safetensors, ckpt, fp16, EMA, inpainting), refusing
bad or malicious files, and separate VAEs."""
import json
import os
import shutil
import sys
import types

import pytest
import torch

from tests import checkpoint_factory as factory
from modules import cache, model_detection, safe, sd_models, sd_vae, shared


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Checkpoint files built once for the whole module."""
    d = tmp_path_factory.mktemp("ckpts")
    return types.SimpleNamespace(
        st=factory.make_tiny_sd1_checkpoint(str(d / "tiny.safetensors")),
        ckpt_fp16_ema=factory.make_tiny_sd1_checkpoint(str(d / "tiny_fp16_ema.ckpt"), dtype=torch.float16, with_ema=True),
        inpaint=factory.make_tiny_sd1_checkpoint(str(d / "tiny-inpainting.safetensors"), in_channels=9, seed=3),
        vae=factory.make_tiny_vae(str(d / "other.vae.safetensors"), seed=5),
        vae_prefixed=factory.make_tiny_vae(str(d / "prefixed.pt"), seed=6, prefixed=True),
    )


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """A fresh models folder and flags, no loaded model, no cached hashes; hijack/callbacks left out (tested apart)."""
    models = tmp_path / "models"
    (models / "Stable-diffusion").mkdir(parents=True)
    (models / "VAE").mkdir()
    monkeypatch.setattr(shared, "models_path", str(models))
    for flag, value in dict(ckpt_dir=None, ckpt=None, vae_path=None, vae_dir=None, no_hashing=False, disable_safe_unpickle=False).items():
        monkeypatch.setattr(shared.cmd_opts, flag, value, raising=False)
    monkeypatch.setenv("SD_WEBUI_CACHE_FILE", str(tmp_path / "cache.json"))
    monkeypatch.setattr(cache, "cache_data", None)
    monkeypatch.setattr(sd_models, "_call_hijack", lambda model: None)
    monkeypatch.setattr(sd_models, "_fire_model_loaded", lambda model: None)
    monkeypatch.setitem(shared.opts.data, "sd_model_checkpoint", None)
    monkeypatch.setitem(shared.opts.data, "sd_vae", "Automatic")
    sd_vae.delete_base_vae()
    sd_vae.vae_dict.clear()
    shared.sd_model = None
    yield types.SimpleNamespace(models=models, sd_dir=models / "Stable-diffusion", vae_dir=models / "VAE", tmp=tmp_path)
    shared.sd_model = None
    sd_models.checkpoints_list.clear()
    sd_models.checkpoint_aliases.clear()


def put(src, folder, name=None):
    dst = os.path.join(str(folder), name or os.path.basename(src))
    shutil.copy(src, dst)
    return dst


def run_model(model, prompts=("a photo of a cat",)):
    with torch.inference_mode():
        cond = model.get_learned_conditioning(list(prompts))
        x = torch.randn(len(prompts), 4, 8, 8, generator=torch.Generator().manual_seed(0))
        eps = model.apply_model(x, torch.full((len(prompts),), 500), cond)
        image = model.decode_first_stage(x)
        latent = model.get_first_stage_encoding(model.encode_first_stage(image))
    return cond, eps, image, latent


# ---- detection -----------------------------------------------------------------------------------------------------

def test_tiny_checkpoint_config_is_read_from_shapes(files):
    sd = sd_models.read_state_dict(files.st)
    cfg = model_detection.detect_config(sd, files.st)
    assert cfg.family.name == "sd1" and cfg.conditioning_key == "crossattn"
    assert cfg.unet["in_channels"] == 4 and cfg.unet["model_channels"] == 32
    assert cfg.unet["channel_mult"] == (1, 2) and cfg.unet["num_res_blocks"] == 1
    assert cfg.unet["attention_resolutions"] == [2] and cfg.unet["context_dim"] == 32
    assert cfg.vae["ddconfig"]["ch_mult"] == (1, 2, 2, 2) and cfg.vae["embed_dim"] == 4
    assert cfg.clip == dict(hidden_size=32, num_hidden_layers=2, intermediate_size=64, vocab_size=49408,
                            max_position_embeddings=77, num_attention_heads=1)


def test_real_sd15_layout_is_detected():
    with torch.device("meta"):  # shapes only: no memory for 1B parameters
        model = factory.build_random_model(unet=factory.SD15_UNET, vae=factory.SD15_VAE, clip=factory.SD15_CLIP)
    cfg = model_detection.detect_config(model.state_dict(), "v1-5-pruned.safetensors")
    assert cfg.unet["model_channels"] == 320 and cfg.unet["channel_mult"] == (1, 2, 4, 4)
    assert cfg.unet["num_res_blocks"] == 2 and sorted(cfg.unet["attention_resolutions"]) == [1, 2, 4]
    assert cfg.unet["num_heads"] == 8 and cfg.unet["context_dim"] == 768 and not cfg.unet["use_linear_in_transformer"]
    assert cfg.vae["ddconfig"]["ch"] == 128 and cfg.vae["ddconfig"]["ch_mult"] == (1, 2, 4, 4)
    assert cfg.vae["ddconfig"]["num_res_blocks"] == 2 and cfg.vae["ddconfig"]["z_channels"] == 4
    assert cfg.clip["hidden_size"] == 768 and cfg.clip["num_hidden_layers"] == 12
    assert cfg.clip["intermediate_size"] == 3072 and cfg.clip["num_attention_heads"] == 12


@pytest.mark.parametrize("keys, words", [
    ({"conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 768)}, "SDXL"),
    ({"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": (4608, 1536)}, "SD3"),
    ({"encoder.conv_in.weight": (128, 3, 3, 3), "decoder.conv_in.weight": (512, 4, 3, 3)}, "VAE"),
    ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320)}, "LoRA"),
    ({"something.else": (3,)}, "not a Stable Diffusion checkpoint"),
])
def test_other_families_are_refused_by_name(keys, words):
    sd = {k: torch.empty(shape, device="meta") for k, shape in keys.items()}
    with pytest.raises(model_detection.UnsupportedModelError) as e:
        model_detection.detect_config(sd, "/x/mystery.safetensors")
    assert "mystery.safetensors" in str(e.value) and words in str(e.value)


# ---- loading -------------------------------------------------------------------------------------------------------

def test_safetensors_checkpoint_loads_and_runs(env, files):
    from ldm.models.diffusion.ddpm import LatentDiffusion
    from ldm.modules.attention import CrossAttention
    from ldm.modules.diffusionmodules.openaimodel import UNetModel
    put(files.st, env.sd_dir)
    sd_models.list_models()
    model = sd_models.load_model()
    assert model is shared.sd_model and isinstance(model, LatentDiffusion)
    assert isinstance(model.model.diffusion_model, UNetModel)
    assert any(isinstance(m, CrossAttention) for m in model.modules())
    assert shared.opts.sd_model_checkpoint == model.sd_checkpoint_info.title == f"tiny.safetensors [{model.sd_model_hash}]"
    assert model.is_sd1 and not model.is_sdxl and model.parameterization == "eps" and model.cond_stage_key == "txt"
    assert model.alphas_cumprod.dtype == torch.float32 and model.alphas_cumprod.shape == (1000,)
    assert abs(float(model.alphas_cumprod[0]) - (1 - 0.00085)) < 1e-6
    assert model.cond_stage_model.max_length == 77
    assert not any(p.is_meta or p.requires_grad for p in model.parameters())
    cond, eps, image, latent = run_model(model, ["a photo of a cat", ""])
    assert cond.shape == (2, 77, 32) and eps.shape == (2, 4, 8, 8)
    assert image.shape == (2, 3, 64, 64) and latent.shape == (2, 4, 8, 8)
    assert all(torch.isfinite(t).all() for t in (cond, eps, image, latent))


def test_loading_assigns_the_files_tensors_without_copying(env, files):
    sd = sd_models.read_state_dict(files.st)
    model = sd_models.build_model(model_detection.detect_config(sd, files.st))
    sd_models.load_model_weights(model, None, sd)
    key = "model.diffusion_model.out.2.weight"
    assert model.model.diffusion_model.out[2].weight.data_ptr() == sd[key].data_ptr()


def test_fp16_ckpt_with_ema_loads_the_main_weights(env, files):
    info = sd_models.CheckpointInfo(files.ckpt_fp16_ema)
    model = sd_models.load_model(info)
    assert model.dtype == torch.float32  # CPU runs in fp32
    reference = sd_models.read_state_dict(files.st)  # same seed: same main weights
    w = model.model.diffusion_model.input_blocks[0][0].weight
    assert torch.allclose(w, reference["model.diffusion_model.input_blocks.0.0.weight"].half().float())
    _, eps, _, _ = run_model(model)
    assert torch.isfinite(eps).all()


def test_inpainting_checkpoint_takes_image_conditioning(env, files):
    model = sd_models.load_model(sd_models.CheckpointInfo(files.inpaint))
    assert model.model.conditioning_key == "hybrid" and model.model.diffusion_model.in_channels == 9
    with torch.inference_mode():
        c = model.get_learned_conditioning(["a cat"])
        out = model.apply_model(torch.randn(1, 4, 8, 8), torch.tensor([10]), {"c_crossattn": [c], "c_concat": [torch.randn(1, 5, 8, 8)]})
        assert out.shape == (1, 4, 8, 8) and torch.isfinite(out).all()
        with pytest.raises(ValueError, match="inpainting"):
            model.apply_model(torch.randn(1, 4, 8, 8), torch.tensor([10]), c)


def test_hijack_and_model_loaded_callback_run_after_loading(env, files, monkeypatch):
    calls = []
    monkeypatch.setattr(sd_models, "_call_hijack", lambda model: calls.append(("hijack", shared.sd_model is model)))
    monkeypatch.setattr(sd_models, "_fire_model_loaded", lambda model: calls.append(("loaded", shared.sd_model is model)))
    sd_models.load_model(sd_models.CheckpointInfo(files.st))
    assert calls == [("hijack", True), ("loaded", True)]


# ---- bad files -------------------------------------------------------------------------------------------------------

class _RunsCode:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("func, forbidden", [(os.system, "system"), (eval, ".eval")])
def test_malicious_pickle_is_refused_and_never_executed(env, func, forbidden):
    marker = env.tmp / "pwned"
    code = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w').close()"
    path = str(env.sd_dir / "evil.ckpt")
    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(1)}, "payload": _RunsCode(func, code)}, path)
    with pytest.raises(safe.UnsafeCheckpointError) as e:
        sd_models.load_model(sd_models.CheckpointInfo(path))
    assert "evil.ckpt" in str(e.value) and forbidden in str(e.value)
    assert not marker.exists()
    assert shared.sd_model is None


def test_disable_safe_unpickle_allows_other_globals(env, monkeypatch):
    import collections
    path = str(env.tmp / "counter.pt")
    torch.save({"w": torch.ones(2), "extra": collections.Counter("aab")}, path)
    with pytest.raises(safe.UnsafeCheckpointError, match="collections.Counter"):
        safe.load(path)
    monkeypatch.setattr(shared.cmd_opts, "disable_safe_unpickle", True)
    assert safe.load(path)["extra"]["a"] == 2


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_truncated_checkpoint_gives_a_clear_error(env, files, suffix):
    src = files.st if suffix == ".safetensors" else files.ckpt_fp16_ema
    path = env.sd_dir / f"broken{suffix}"
    path.write_bytes(open(src, "rb").read()[:50_000])
    with pytest.raises(ValueError) as e:
        sd_models.load_model(sd_models.CheckpointInfo(str(path)))
    assert f"broken{suffix}" in str(e.value) and ("truncated" in str(e.value) or "not a valid" in str(e.value))
    assert shared.sd_model is None


def test_a_bad_file_leaves_the_loaded_model_in_place(env, files):
    model = sd_models.load_model(sd_models.CheckpointInfo(files.st))
    broken = env.sd_dir / "broken.safetensors"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="broken.safetensors"):
        sd_models.load_model(sd_models.CheckpointInfo(str(broken)))
    assert shared.sd_model is model and shared.opts.sd_model_checkpoint == model.sd_checkpoint_info.title


def test_file_that_is_not_a_checkpoint_gives_a_clear_error(env, files):
    text = env.sd_dir / "notes.safetensors"
    text.write_text("hello, I am not a model")
    with pytest.raises(ValueError, match="notes.safetensors"):
        sd_models.load_model(sd_models.CheckpointInfo(str(text)))
    vae_only = put(files.vae, env.sd_dir, "vae_in_wrong_folder.safetensors")
    with pytest.raises(ValueError, match="vae_in_wrong_folder.safetensors.*VAE"):
        sd_models.load_model(sd_models.CheckpointInfo(vae_only))


# ---- listing, titles, hashes -----------------------------------------------------------------------------------------

def test_a_new_data_folder_falls_back_to_the_shipped_demo_model(env, monkeypatch):
    """--data-dir pointing at a new folder: the demo model the program ships is found, as the fallback of last resort."""
    shipped = os.path.join(shared.paths_internal.script_path, "models", "Stable-diffusion", sd_models.BUILTIN_DEMO_NAME)
    if not os.path.isfile(shipped):
        pytest.skip("this checkout has no demo model")
    monkeypatch.setattr(shared.cmd_opts, "no_download_sd_model", False)
    sd_models.list_models()
    assert [i.filename for i in sd_models.checkpoints_list.values()] == [shipped]
    assert sd_models.select_checkpoint().filename == shipped


def test_no_checkpoint_is_a_normal_state(env, monkeypatch):
    monkeypatch.setattr(shared.cmd_opts, "no_download_sd_model", True)  # no demo fallback
    sd_models.list_models()
    assert sd_models.checkpoints_list == {} and sd_models.select_checkpoint() is None
    assert sd_models.load_model() is None and shared.sd_model is None
    assert str(env.sd_dir) in sd_models.no_checkpoint_message()


def test_models_folder_and_ckpt_dir_are_listed_with_titles(env, files, monkeypatch):
    sub = env.sd_dir / "sub"
    sub.mkdir()
    put(files.st, sub)
    put(files.vae, env.sd_dir, "tiny.vae.safetensors")  # a VAE beside a checkpoint is not a checkpoint
    extra = env.tmp / "extra"
    extra.mkdir()
    put(files.ckpt_fp16_ema, extra)
    monkeypatch.setattr(shared.cmd_opts, "ckpt_dir", str(extra))
    sd_models.list_models()
    assert sorted(sd_models.checkpoints_list) == ["sub/tiny.safetensors", "tiny_fp16_ema.ckpt"]
    assert sd_models.get_closet_checkpoint_match("tiny_fp16_ema").name == "tiny_fp16_ema.ckpt"
    assert sd_models.get_closet_checkpoint_match("sub/tiny.safetensors [0123456789]").name == "sub/tiny.safetensors"
    assert sd_models.get_closet_checkpoint_match("nothing like it") is None


def test_ckpt_flag_adds_and_selects_a_file(env, files, monkeypatch):
    put(files.st, env.sd_dir)
    monkeypatch.setattr(shared.cmd_opts, "ckpt", files.ckpt_fp16_ema)
    sd_models.list_models()
    assert sd_models.select_checkpoint().filename == files.ckpt_fp16_ema


def test_short_hash_is_cached_on_disk_and_recomputed_when_the_file_changes(env, files):
    path = put(files.st, env.sd_dir)
    sd_models.list_models()
    info = sd_models.checkpoints_list["tiny.safetensors"]
    assert info.shorthash is None  # computed lazily, not while listing
    shorthash = info.calculate_shorthash()
    from modules import hashes
    full = hashes.calculate_sha256(path)
    assert shorthash == full[:10] and info.title == f"tiny.safetensors [{shorthash}]"
    assert sd_models.checkpoints_list[info.title] is info and sd_models.get_closet_checkpoint_match(shorthash) is info
    saved = json.load(open(env.tmp / "cache.json"))
    assert saved["hashes"]["checkpoint/tiny.safetensors"]["sha256"] == full
    cache.cache_data = None  # a new session reads it back from disk
    assert sd_models.CheckpointInfo(path).title == info.title
    with open(path, "ab") as f:
        f.write(b" ")
    os.utime(path, (os.path.getmtime(path) + 10,) * 2)
    assert sd_models.CheckpointInfo(path).shorthash is None


def test_no_hashing_flag_skips_hashing(env, files, monkeypatch):
    monkeypatch.setattr(shared.cmd_opts, "no_hashing", True)
    info = sd_models.CheckpointInfo(put(files.st, env.sd_dir))
    assert info.calculate_shorthash() is None and info.title == "tiny.safetensors"
    saved = json.load(open(env.tmp / "cache.json")) if (env.tmp / "cache.json").exists() else {}
    assert not saved.get("hashes")


def test_safetensors_metadata_is_read_from_the_header(files):
    assert sd_models.read_metadata_from_safetensors(files.st) == {"format": "pt"}


# ---- VAE ---------------------------------------------------------------------------------------------------------------

def decode(model):
    with torch.inference_mode():
        return model.decode_first_stage(torch.ones(1, 4, 8, 8))


def test_vae_with_the_checkpoints_name_replaces_the_baked_in_one(env, files):
    baked = decode(sd_models.load_model(sd_models.CheckpointInfo(put(files.st, env.tmp / "models", "plain.safetensors"))))
    ckpt = put(files.st, env.sd_dir)
    vae = put(files.vae, env.sd_dir, "tiny.vae.safetensors")
    sd_models.list_models()
    sd_vae.refresh_vae_list()
    assert "tiny.vae.safetensors" in sd_vae.vae_dict
    assert sd_vae.resolve_vae(ckpt) == (vae, "found near the checkpoint")
    model = sd_models.load_model()
    assert model.loaded_vae_file == vae and sd_vae.get_loaded_vae_name() == "tiny.vae.safetensors"
    assert not torch.allclose(decode(model), baked)
    expected = factory.tiny_vae_state_dict(seed=5)["decoder.conv_out.weight"]
    assert torch.equal(model.first_stage_model.decoder.conv_out.weight, expected)

    shared.opts.data["sd_vae"] = "None"  # back to the checkpoint's own VAE
    sd_vae.reload_vae_weights(model)
    assert model.loaded_vae_file is None and torch.allclose(decode(model), baked)


def test_vae_chosen_in_settings_with_prefixed_keys(env, files):
    put(files.vae_prefixed, env.vae_dir, "fancy.pt")
    put(files.st, env.sd_dir)
    sd_models.list_models()
    sd_vae.refresh_vae_list()
    shared.opts.data["sd_vae"] = "fancy.pt"
    model = sd_models.load_model()
    expected = factory.tiny_vae_state_dict(seed=6)["decoder.conv_out.weight"]
    assert torch.equal(model.first_stage_model.decoder.conv_out.weight, expected)


def test_vae_path_flag_wins_and_a_bad_vae_is_named(env, files, monkeypatch):
    ckpt = put(files.st, env.sd_dir)
    monkeypatch.setattr(shared.cmd_opts, "vae_path", files.vae)
    assert sd_vae.resolve_vae(ckpt) == (files.vae, "from commandline argument")
    bad = env.vae_dir / "bad.safetensors"
    factory.save_state_dict({"decoder.conv_out.weight": torch.zeros(3, 7, 3, 3)}, str(bad))
    monkeypatch.setattr(shared.cmd_opts, "vae_path", str(bad))
    with pytest.raises(ValueError, match="bad.safetensors"):
        sd_models.load_model(sd_models.CheckpointInfo(ckpt))


def test_modules_are_importable_under_the_original_paths():
    import ldm.models.diffusion.ddpm as ddpm
    import ldm.modules.attention as attention
    import ldm.modules.diffusionmodules.openaimodel as openaimodel
    import ldm.modules.diffusionmodules.model as vae_model
    import ldm.modules.encoders.modules as encoders
    for module, names in [(ddpm, ["LatentDiffusion", "DiffusionWrapper"]),
                          (attention, ["SpatialTransformer", "BasicTransformerBlock", "CrossAttention", "FeedForward", "GEGLU"]),
                          (openaimodel, ["UNetModel", "ResBlock", "TimestepEmbedSequential", "Downsample", "Upsample", "timestep_embedding"]),
                          (vae_model, ["Encoder", "Decoder", "ResnetBlock", "AttnBlock"]),
                          (encoders, ["FrozenCLIPEmbedder"])]:
        assert all(hasattr(module, n) for n in names), module.__name__
    assert "modules.sd_models" in sys.modules
