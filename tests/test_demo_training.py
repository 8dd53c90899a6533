"""The demo model's training script: the VAE's starting point keeps colours through GroupNorm, and every phase runs
and writes a checkpoint the ordinary loader reads."""
import torch
import torch.nn.functional as F

from demo_model import shapes_data, train, vae_init


def test_the_vae_starts_as_a_block_average_autoencoder_for_any_colours():
    from ldm.models.autoencoder import AutoencoderKL
    vae = AutoencoderKL(train.VAE_CONFIG, embed_dim=4)
    vae_init.init_block_average_autoencoder(vae)
    _, images = shapes_data.make_dataset(8, seed=4)
    x = train.to_model_range(torch.from_numpy(images))
    with torch.no_grad():
        latent = vae.encode(x).mean
        decoded = vae.decode(latent)
    pooled = F.avg_pool2d(x, 8)
    # latent channels 0-2 are each 8x8 cell's mean colour, whatever the picture's own colours are
    assert (latent[:, :3] - pooled).abs().max() < 0.06  # within 8 grey levels
    blocky = F.interpolate(pooled, scale_factor=8, mode="nearest")
    assert (decoded - blocky).abs().mean() < 0.03


def test_training_phases_run_and_write_a_loadable_checkpoint(tmp_path):
    vae_file, unet_file, final = tmp_path / "vae.safetensors", tmp_path / "unet.safetensors", tmp_path / "demo.safetensors"
    common = ["--seed", "0", "--threads", "1", "--images", "16", "--judge-every", "0"]  # (the judge: tests/test_demo_model.py)
    train.main(common + ["--vae-steps", "2", "--unet-steps", "0", "--layout-steps", "0", "--decoder-steps", "0",
                         "--vae-out", str(vae_file)])
    train.main(common + ["--vae-from", str(vae_file), "--unet-steps", "2", "--unet-batch", "4", "--layout-steps", "0",
                         "--decoder-steps", "0", "--out", str(unet_file)])
    # from a whole checkpoint's VAE and UNet: a first stage that switches to the high-noise settings at its second
    # step, then the restarted layout stage, then the decoder
    train.main(common + ["--vae-from", str(unet_file), "--resume", str(unet_file), "--unet-steps", "2", "--unet-batch", "4",
                         "--high-t-from", "1", "--layout-steps", "2", "--decoder-steps", "1", "--out", str(final)])
    from safetensors import safe_open
    with safe_open(str(final), framework="pt") as f:
        metadata = f.metadata()
        keys = set(f.keys())
    assert metadata["modelspec.resolution"] == "64x64" and "--resume" in metadata["demo_model.command"]
    assert metadata["demo_model.steps"] == "6"  # the 2 steps the resumed file had, then both stages
    assert "--out " + str(unet_file) in metadata["demo_model.resumed_from_command"]  # the recipe is both commands
    assert any(k.startswith("model.diffusion_model.") for k in keys)
    assert any(k.startswith("first_stage_model.decoder.") for k in keys)
    assert any(k.startswith("cond_stage_model.transformer.text_model.") for k in keys)
    from safetensors.torch import load_file

    from modules import model_detection
    unet = model_detection.detect_unet_config(load_file(str(final)))
    assert unet["model_channels"] == 32 and tuple(unet["channel_mult"]) == (1, 2, 4)

    # --assemble: one run's UNet and text encoder with another run's VAE, tensor for tensor
    assembled = tmp_path / "assembled.safetensors"
    train.main(common + ["--assemble", str(final), "--vae-from", str(vae_file), "--out", str(assembled)])
    parts, unet_and_text, vae = load_file(str(assembled)), load_file(str(final)), load_file(str(vae_file))
    for key, tensor in parts.items():
        if key.startswith("first_stage_model."):
            assert torch.equal(tensor, vae[key[len("first_stage_model."):]].half()), key
        else:
            assert torch.equal(tensor, unet_and_text[key]), key


def test_the_noisiest_timesteps_get_their_share_of_the_batch_and_a_picture_sized_loss():
    generator = torch.Generator().manual_seed(0)
    t = train.training_timesteps(4000, generator, high_share=0.5)
    assert 0 <= int(t.min()) and int(t.max()) <= 999
    # half drawn from t >= 600, half uniform (of which 40% land there too): 70% in all
    assert 0.66 < float((t >= 600).float().mean()) < 0.74
    weights = train.loss_weights(train.sd1_alphas_cumprod(), high_noise_weight=200)
    snr = train.sd1_alphas_cumprod() / (1 - train.sd1_alphas_cumprod())
    # at high noise the eps loss becomes the picture (x0) loss, 1/SNR, which decides where shapes go; capped
    assert torch.isclose(weights[900], 1 / snr[900], rtol=1e-4) and float(weights[900]) > 50
    assert float(weights[999]) == 200
    assert torch.isclose(weights[0], 5 / snr[0], rtol=1e-4)  # min-SNR(5) at low noise
