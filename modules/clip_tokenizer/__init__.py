"""CLIP ViT-L/14's BPE tokenizer, from files shipped in this folder (derived from open_clip's bpe vocabulary)."""
import functools
import os

from modules.clip_tokenizer.light_tokenizer import LightCLIPTokenizer

TOKENIZER_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=1)
def load_clip_tokenizer():
    """SD1's tokenizer, with transformers' CLIPTokenizer API without importing transformers (light_tokenizer.py):
    "a photo of a cat" -> 49406 320 1125 539 320 2368 49407."""
    return LightCLIPTokenizer(TOKENIZER_DIR)
