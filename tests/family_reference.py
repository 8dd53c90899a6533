"""Reference models for parity tests: diffusers' UNet and VAE and transformers' CLIP text models, built from explicit
configs for a family's ModelConfig (nothing downloaded) and given a checkpoint's tensors through diffusers' own
single-file converters. Shared by the tiny (default suite) and full-size (`-m full_size`) parity tests."""
import torch

from modules.clip_tokenizer import load_clip_tokenizer


def relative_error(ours, reference, what=""):
    error = float((ours.double() - reference.double()).norm() / reference.double().norm())
    print(f"{what} relative error vs reference: {error:.2e}")
    return error


def meta_build_and_assign(cls, config, state_dict):
    """A diffusers/transformers model built without allocating, then given the converted tensors (no copy)."""
    with torch.device("meta"):
        model = cls(**config) if isinstance(config, dict) else cls(config)
    missing, unexpected = model.load_state_dict(state_dict, strict=False, assign=True)
    missing = [k for k in missing if not k.endswith("position_ids")]
    assert not missing and not unexpected, (missing[:5], unexpected[:5])
    for module in model.modules():  # non-persistent buffers stayed on meta
        if hasattr(module, "position_ids") and module.position_ids.is_meta:
            n = module.position_embedding.weight.shape[0]
            module.register_buffer("position_ids", torch.arange(n).expand((1, -1)), persistent=False)
    return model.eval().requires_grad_(False)


# ---- UNet and VAE ---------------------------------------------------------------------------------------------------

def diffusers_unet_config(config):
    u = config.unet
    block_out = [u["model_channels"] * m for m in u["channel_mult"]]
    depths = list(u["transformer_depth"])
    middle = u["transformer_depth_middle"]
    if u["num_head_channels"] != -1:
        heads = [max(1, ch // u["num_head_channels"]) for ch in block_out]
    else:
        heads = [u["num_heads"]] * len(block_out)
    attention = [depth > 0 for depth in depths]
    result = dict(
        sample_size=8, in_channels=u["in_channels"], out_channels=u["out_channels"], layers_per_block=u["num_res_blocks"],
        cross_attention_dim=u["context_dim"], block_out_channels=tuple(block_out), attention_head_dim=tuple(heads),
        use_linear_projection=u["use_linear_in_transformer"],
        down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        # levels without attention ignore their entry; the middle block takes the last one
        transformer_layers_per_block=tuple(depth if depth else middle for depth in depths[:-1]) + (depths[-1] or middle,),
    )
    if config.family.is_sdxl:
        result.update(addition_embed_type="text_time", addition_time_embed_dim=config.vector_embed_dim,
                      projection_class_embeddings_input_dim=u["adm_in_channels"])
    return result


def diffusers_unet(config, state_dict):
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
    unet_config = diffusers_unet_config(config)
    return meta_build_and_assign(UNet2DConditionModel, unet_config, convert_ldm_unet_checkpoint(state_dict, unet_config))


def diffusers_vae(config, state_dict):
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    dd = config.vae["ddconfig"]
    vae_config = dict(
        in_channels=dd["in_channels"], out_channels=dd["out_ch"], latent_channels=config.vae["embed_dim"],
        layers_per_block=dd["num_res_blocks"], sample_size=256, block_out_channels=tuple(dd["ch"] * m for m in dd["ch_mult"]),
        down_block_types=("DownEncoderBlock2D",) * len(dd["ch_mult"]), up_block_types=("UpDecoderBlock2D",) * len(dd["ch_mult"]),
    )
    return meta_build_and_assign(AutoencoderKL, vae_config, convert_ldm_vae_checkpoint(state_dict, vae_config))


def random_sdxl_vector_inputs(config, unet, n, generator):
    """(pooled text embeds, time ids, the vector y they make) as diffusers' SDXL UNet takes them."""
    pooled = sum(te.embed_dim for te in config.text_encoders if te.spec.pooled)
    numbers = config.unet["adm_in_channels"] - pooled
    text_embeds = torch.randn(n, pooled, generator=generator)
    time_ids = torch.randint(0, 1024, (n, numbers // config.vector_embed_dim), generator=generator).float()
    vector = torch.cat([text_embeds, unet.add_time_proj(time_ids.flatten()).reshape(n, -1)], dim=1)
    return text_embeds, time_ids, vector


# ---- text encoders --------------------------------------------------------------------------------------------------

def _clip_text_config(te, with_projection=False):
    from transformers import CLIPTextConfig
    return CLIPTextConfig(
        vocab_size=te.vocab_size, hidden_size=te.width, intermediate_size=te.mlp_width, num_hidden_layers=te.layers,
        num_attention_heads=te.heads, max_position_embeddings=te.context_length,
        hidden_act="quick_gelu" if te.spec.kind == "clip" else "gelu", layer_norm_eps=1e-5,
        projection_dim=te.embed_dim or te.width, bos_token_id=49406, eos_token_id=49407, pad_token_id=1)


def transformers_text_model(te, state_dict):
    """transformers' CLIP text model with this encoder's weights (OpenCLIP ones converted by diffusers)."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection
    if te.spec.kind == "clip":
        base = te.prefix + "transformer.text_model."
        weights = {k[len(base):]: v for k, v in state_dict.items() if k.startswith(base) and not k.endswith("position_ids")}
        return meta_build_and_assign(CLIPTextModel, _clip_text_config(te), weights)
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    config = _clip_text_config(te, with_projection=True)
    with torch.device("meta"):
        shell = CLIPTextModelWithProjection(config)
    # (under a neutral prefix: diffusers leaves SD2's last block out by key name, its pipeline never runs it)
    source = te.prefix + "model."
    renamed = {"reference.model." + k[len(source):]: v for k, v in state_dict.items() if k.startswith(source)}
    weights = convert_open_clip_checkpoint(shell, renamed, prefix="reference.model.")
    # (diffusers leaves SD2's projection out: its pipeline never uses it)
    weights.setdefault("text_projection.weight", state_dict[te.prefix + "model.text_projection"].T.contiguous())
    return meta_build_and_assign(CLIPTextModelWithProjection, config, weights)


def tokens(prompts, pad_with_zero):
    """A1111's token rows for short prompts: start, the prompt, end, then end tokens (CLIP) or zeros (OpenCLIP)."""
    tokenizer = load_clip_tokenizer()
    rows = []
    for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]:
        row = [49406] + ids + [49407]
        rows.append(row + [0 if pad_with_zero else 49407] * (77 - len(row)))
    return torch.tensor(rows)


def text_conditioning(config, state_dict, prompts, width, height):
    """{"crossattn", and for SDXL "pooled" and "vector"} as the family's original code computes them."""
    crossattn, pooled = [], None
    for te in config.text_encoders:
        model = transformers_text_model(te, state_dict)
        ids = tokens(prompts, pad_with_zero=te.spec.kind == "open_clip")
        out = model(input_ids=ids, output_hidden_states=True)
        if te.layer == "last":
            states = out.last_hidden_state
        else:
            states = out.hidden_states[-2]
            if te.spec.final_layer_norm:
                states = model.text_model.final_layer_norm(states) if hasattr(model, "text_model") else model.final_layer_norm(states)
        crossattn.append(states)
        if te.spec.pooled:
            pooled = out.text_embeds
    result = {"crossattn": torch.cat(crossattn, dim=-1)}
    if config.family.is_sdxl:
        from diffusers.models.embeddings import Timesteps
        from modules.shared import opts
        numbers = {"original_size_as_tuple": [height, width], "crop_coords_top_left": [opts.sdxl_crop_top, opts.sdxl_crop_left],
                   "target_size_as_tuple": [height, width], "aesthetic_score": [opts.sdxl_refiner_high_aesthetic_score]}
        time_ids = torch.tensor([sum((numbers[key] for key in config.family.vector_inputs), [])] * len(prompts), dtype=torch.float32)
        time_proj = Timesteps(config.vector_embed_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        result["pooled"] = pooled
        result["vector"] = torch.cat([pooled, time_proj(time_ids.flatten()).reshape(len(prompts), -1)], dim=1)
    return result
