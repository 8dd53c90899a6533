"""The table of model families: the one place that says what SD1, SD2, SDXL and the SDXL refiner are.

Each entry declares how a checkpoint of the family is recognised from its keys, how its architecture's head counts
follow from widths (widths and depths are always read from the file's shapes), its text encoders with their key
prefixes, its latent format (scale factor, latent->RGB preview factors, which TAESD), its prediction type, its
default size and the variants it comes in (inpainting: 9 UNet input channels, instruct-pix2pix: 8). Detection
(modules.model_detection), building and loading (modules.sd_models), the text-encoder wrappers (modules.sd_hijack),
live previews (modules.latent_codec), the merger's plan and the user-facing messages all read it.
Adding a family is adding an entry.
"""
import dataclasses

# ---- latent formats -------------------------------------------------------------------------------------------------

# Latent channels -> RGB for the "Approx cheap" preview: least-squares fits (A1111's sd_vae_approx coefficients).
SD1_LATENT_RGB = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)
SDXL_LATENT_RGB = (
    (0.3448, 0.4168, 0.4395),
    (-0.1953, -0.0290, 0.0250),
    (0.1074, 0.0886, -0.0163),
    (-0.3730, -0.2499, -0.2088),
)


@dataclasses.dataclass(frozen=True)
class LatentFormat:
    scale_factor: float             # latents the UNet sees = scale_factor * VAE latents
    channels: int                   # latent channels
    rgb_factors: tuple              # (channels x 3) for the cheap preview
    taesd_decoder: str              # models/VAE-approx/<name>.safetensors|.pth


SD1_LATENT = LatentFormat(scale_factor=0.18215, channels=4, rgb_factors=SD1_LATENT_RGB, taesd_decoder="taesd_decoder")
SDXL_LATENT = LatentFormat(scale_factor=0.13025, channels=4, rgb_factors=SDXL_LATENT_RGB, taesd_decoder="taesdxl_decoder")


# ---- text encoders --------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TextEncoderSpec:
    """One text encoder of a family.

    kind: "clip" (CLIP's text model, transformers' names, under `<prefix>transformer.text_model.`) or "open_clip" (OpenCLIP's
    text transformer under `<prefix>model.`). layer: "last" (SD1), "penultimate" (SD2: then the final LayerNorm;
    SDXL: without it, as the original configs do). pooled: also returns the pooled embedding (SDXL's bigG).
    ti_key: the name of this encoder's vectors in SDXL textual-inversion files (clip_l / clip_g)."""
    kind: str
    prefix: str
    layer: str
    final_layer_norm: bool = True
    pooled: bool = False
    ti_key: str = "clip_l"
    head_width: int = 64            # heads = width / 64 unless a <checkpoint>.yaml says otherwise


CLIP_L_SD1 = TextEncoderSpec("clip", "cond_stage_model.", layer="last")
OPEN_CLIP_H_SD2 = TextEncoderSpec("open_clip", "cond_stage_model.", layer="penultimate", final_layer_norm=True)
CLIP_L_SDXL = TextEncoderSpec("clip", "conditioner.embedders.0.", layer="penultimate", final_layer_norm=False)
OPEN_CLIP_G_SDXL = TextEncoderSpec("open_clip", "conditioner.embedders.1.", layer="penultimate", final_layer_norm=False,
                                   pooled=True, ti_key="clip_g")
OPEN_CLIP_G_REFINER = dataclasses.replace(OPEN_CLIP_G_SDXL, prefix="conditioner.embedders.0.")


# ---- families -------------------------------------------------------------------------------------------------------

VARIANTS = {4: "base", 9: "inpainting", 8: "instruct-pix2pix"}
VARIANT_LABELS = {"base": "", "inpainting": " inpainting", "instruct-pix2pix": " instruct-pix2pix"}


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    name: str                       # "sd1", "sd2", "sdxl", "sdxl_refiner"
    label: str                      # what users read: "SD1.x", "SDXL", ...
    marker_keys: tuple              # a checkpoint is of this family when it has a key starting with one of these
    text_encoders: tuple            # TextEncoderSpec, in the order the conditioning concatenates them
    unet_heads: dict                # {"num_heads": 8} or {"num_head_channels": 64}: head rule when no yaml says
    latent: LatentFormat
    default_size: int               # the size it was trained at (width = height)
    variants: tuple                 # of VARIANTS' values
    architecture: str               # "ldm" (LatentDiffusion) or "sgm" (DiffusionEngine with a conditioner)
    vector_inputs: tuple = ()       # SDXL: the size/crop/score embeddings after the pooled text embedding
    v_prediction_default_size: int = None   # SD2 768-v models
    prediction: str = "eps"

    def variant_label(self, variant):
        return self.label + VARIANT_LABELS[variant]

    @property
    def is_sdxl(self):
        return self.architecture == "sgm"


SD1 = ModelFamily(
    name="sd1", label="SD1.x", marker_keys=("cond_stage_model.transformer.",),
    text_encoders=(CLIP_L_SD1,), unet_heads={"num_heads": 8}, latent=SD1_LATENT, default_size=512,
    variants=("base", "inpainting", "instruct-pix2pix"), architecture="ldm",
)
SD2 = ModelFamily(
    name="sd2", label="SD2.x", marker_keys=("cond_stage_model.model.",),
    text_encoders=(OPEN_CLIP_H_SD2,), unet_heads={"num_head_channels": 64}, latent=SD1_LATENT, default_size=512,
    variants=("base", "inpainting"), architecture="ldm", v_prediction_default_size=768,
)
SDXL = ModelFamily(
    name="sdxl", label="SDXL", marker_keys=("conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."),
    text_encoders=(CLIP_L_SDXL, OPEN_CLIP_G_SDXL), unet_heads={"num_head_channels": 64}, latent=SDXL_LATENT,
    default_size=1024, variants=("base", "inpainting", "instruct-pix2pix"), architecture="sgm",
    vector_inputs=("original_size_as_tuple", "crop_coords_top_left", "target_size_as_tuple"),
)
SDXL_REFINER = ModelFamily(
    name="sdxl_refiner", label="SDXL refiner", marker_keys=("conditioner.embedders.0.model.",),
    text_encoders=(OPEN_CLIP_G_REFINER,), unet_heads={"num_head_channels": 64}, latent=SDXL_LATENT,
    default_size=1024, variants=("base",), architecture="sgm",
    vector_inputs=("original_size_as_tuple", "crop_coords_top_left", "aesthetic_score"),
)

# Checked in this order: the first family with a marker key wins (SDXL before its refiner: both have embedders).
FAMILIES = (SDXL, SDXL_REFINER, SD2, SD1)
BY_NAME = {family.name: family for family in FAMILIES}


def family_of_keys(keys):
    """The family whose marker keys the state dict's keys have, or None."""
    for family in FAMILIES:
        if any(k.startswith(family.marker_keys) for k in keys):
            return family
    return None


def supported_families_text():
    return ", ".join(family.label for family in (SD1, SD2, SDXL, SDXL_REFINER))


# ---- what we recognise but cannot run -------------------------------------------------------------------------------

def _has(keys, *prefixes):
    return any(k.startswith(prefixes) for k in keys)


def _contains(keys, *parts):
    return any(part in k for k in keys for part in parts)


# (name, test(keys) -> bool), checked before the families: these files share some prefixes with them.
UNSUPPORTED = (
    ("SD3", lambda k: _has(k, "model.diffusion_model.joint_blocks.", "joint_blocks.", "text_encoders.clip_g.")),
    ("Flux", lambda k: _has(k, "model.diffusion_model.double_blocks.", "double_blocks.", "model.diffusion_model.single_blocks.")),
    ("AuraFlow", lambda k: _has(k, "model.diffusion_model.double_layers.", "double_layers.", "cond_seq_linear.")),
    ("Stable Cascade", lambda k: _has(k, "clip_txt_mapper.", "clip_txt_pooled_mapper.", "effnet_mapper.")),
    ("PixArt", lambda k: _has(k, "x_embedder.proj.", "model.diffusion_model.x_embedder.") and _contains(k, "t_block.", "y_embedder.")),
    ("Hunyuan-DiT", lambda k: _has(k, "mlp_t5.", "model.mlp_t5.", "extra_embedder.")),
    ("Stable Video Diffusion", lambda k: _contains(k, ".time_stack.", ".time_mixer.")),
    ("SD2 unCLIP", lambda k: _has(k, "noise_augmentor.", "embedder.model.visual.")),
    ("SD2 depth-to-image", lambda k: _has(k, "depth_model.")),
    ("SD x4 upscaler", lambda k: _has(k, "low_scale_model.")),
    ("EDM-trained SDXL (Playground v2.5, CosXL)", lambda k: "edm_mean" in k or "edm_std" in k or "edm_vpred.sigma_max" in k),
)


def unsupported_family_of_keys(keys):
    """The name of an architecture we recognise but do not run, or None."""
    for name, test in UNSUPPORTED:
        if test(keys):
            return name
    return None
