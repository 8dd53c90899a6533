"""SDXL's conditioning as A1111 computes it (A1111: modules.sd_models_xl; extensions import it).

The text goes through both text encoders (via the conditioner); the vector adds the pooled bigG embedding and the
Fourier embeddings of original size = target size = (height, width) of the job, the crop (settings "crop top/left
coordinate"), and for the refiner the aesthetic score (high for the prompt, low for the negative prompt). An
all-empty negative prompt has its text parts zeroed (the size parts stay), as A1111 does.
"""
import torch

from modules import devices
from modules.shared import opts
from sgm.modules.encoders.modules import GeneralConditioner

# A1111 attaches these to GeneralConditioner; here they are its methods, re-exported under A1111's names.
encode_embedding_init_text = GeneralConditioner.encode_embedding_init_text
tokenize = GeneralConditioner.tokenize
process_texts = GeneralConditioner.process_texts
get_target_prompt_token_count = GeneralConditioner.get_target_prompt_token_count


def conditioning_inputs(batch, width, height, is_negative_prompt=False):
    """The conditioner's batch: prompts under "txt", and each size/crop/score entry repeated per prompt."""
    aesthetic_score = opts.sdxl_refiner_low_aesthetic_score if is_negative_prompt else opts.sdxl_refiner_high_aesthetic_score
    # float32 whatever the model's dtype: the embedder computes in float32, and bfloat16 would round the numbers
    # first (a height of 2056 to 2048, an aesthetic score of 6.1 to 6.09375)
    device_args = dict(device=devices.device, dtype=torch.float32)
    n = len(batch)
    return {
        "txt": batch,
        "original_size_as_tuple": torch.tensor([height, width], **device_args).repeat(n, 1),
        "crop_coords_top_left": torch.tensor([opts.sdxl_crop_top, opts.sdxl_crop_left], **device_args).repeat(n, 1),
        "target_size_as_tuple": torch.tensor([height, width], **device_args).repeat(n, 1),
        "aesthetic_score": torch.tensor([aesthetic_score], **device_args).repeat(n, 1),
    }


def get_learned_conditioning(self, batch):
    """{"crossattn", "vector"} for a batch of prompts (prompt_parser.SdConditioning carries width/height/negative)."""
    for embedder in self.conditioner.embedders:
        embedder.ucg_rate = 0.0
    width = getattr(batch, "width", None) or self.default_size  # a plain list of prompts: the family's size
    height = getattr(batch, "height", None) or self.default_size
    is_negative_prompt = getattr(batch, "is_negative_prompt", False)
    inputs = conditioning_inputs(batch, width, height, is_negative_prompt)
    force_zero_negative_prompt = is_negative_prompt and all(x == "" for x in batch)
    return self.conditioner(inputs, force_zero_embeddings=["txt"] if force_zero_negative_prompt else [])

