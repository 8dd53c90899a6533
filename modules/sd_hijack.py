"""Installs the prompt machinery into a loaded model (A1111: modules.sd_hijack.model_hijack).

`hijack(m)` replaces `m.cond_stage_model` with the chunking/emphasis wrapper and wraps the token embedding so
textual-inversion vectors are injected; `apply_circular` switches every Conv2d to circular padding (Tiling).
"""
import torch

import ldm.modules.diffusionmodules.openaimodel
from ldm.modules.encoders.modules import FrozenCLIPEmbedder, FrozenOpenCLIPEmbedder
from modules import devices, errors, sd_hijack_clip, sd_hijack_open_clip, sd_hijack_unet, shared
from modules.clip_tokenizer import load_clip_tokenizer
from modules.textual_inversion.textual_inversion import EmbeddingDatabase
from sgm.modules.encoders import modules as sgm_encoders

ldm.modules.diffusionmodules.openaimodel.th = sd_hijack_unet.th  # the UNet's skip concatenation, hookable (A1111)


class EmbeddingsWithFixes(torch.nn.Module):
    """Token embedding that pastes textual-inversion vectors at the positions the chunker recorded."""

    def __init__(self, wrapped, embeddings, textual_inversion_key="clip_l"):
        super().__init__()
        self.wrapped = wrapped
        self.embeddings = embeddings
        self.textual_inversion_key = textual_inversion_key
        self.weight = wrapped.weight

    def forward(self, input_ids):
        batch_fixes = self.embeddings.fixes
        self.embeddings.fixes = None
        inputs_embeds = self.wrapped(input_ids)
        if batch_fixes is None or len(batch_fixes) == 0 or max([len(x) for x in batch_fixes]) == 0:
            return inputs_embeds
        vecs = []
        for fixes, tensor in zip(batch_fixes, inputs_embeds):
            for offset, embedding in fixes:
                vec = embedding.vec[self.textual_inversion_key] if isinstance(embedding.vec, dict) else embedding.vec
                emb = devices.cond_cast_unet(vec).to(tensor.device, dtype=tensor.dtype)
                emb_len = min(tensor.shape[0] - offset - 1, emb.shape[0])
                # offset + 1 because position 0 is BOS
                tensor = torch.cat([tensor[0:offset + 1], emb[0:emb_len], tensor[offset + 1 + emb_len:]]).to(dtype=inputs_embeds.dtype)
            vecs.append(tensor)
        return torch.stack(vecs)


def _is_hf_clip_embedder(model):
    """ldm's FrozenCLIPEmbedder or anything shaped like it: an HF tokenizer and a CLIP text transformer."""
    return hasattr(model, "tokenizer") and hasattr(model, "transformer") and not hasattr(model, "hijack")


def _wrap_token_embedding(owner, attribute, hijack, textual_inversion_key="clip_l"):
    embedding = getattr(owner, attribute)
    if not isinstance(embedding, EmbeddingsWithFixes):
        setattr(owner, attribute, EmbeddingsWithFixes(embedding, hijack, textual_inversion_key))


def wrap_text_encoder(embedder, hijack):
    """A1111's prompt wrapper for one text encoder (its token embedding wrapped for textual inversion), or None for
    modules that are not text encoders (SDXL's size embedders) or are wrapped already."""
    if isinstance(embedder, sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase):
        return None
    if isinstance(embedder, sgm_encoders.FrozenOpenCLIPEmbedder2):
        _wrap_token_embedding(embedder.model, "token_embedding", hijack, textual_inversion_key="clip_g")
        return sd_hijack_open_clip.FrozenOpenCLIPEmbedder2WithCustomWords(embedder, hijack)
    if isinstance(embedder, FrozenOpenCLIPEmbedder):
        _wrap_token_embedding(embedder.model, "token_embedding", hijack)
        return sd_hijack_open_clip.FrozenOpenCLIPEmbedderWithCustomWords(embedder, hijack)
    if isinstance(embedder, sgm_encoders.FrozenCLIPEmbedder):
        _wrap_token_embedding(sd_hijack_clip.text_model_of(embedder.transformer).embeddings, "token_embedding", hijack)
        return sd_hijack_clip.FrozenCLIPEmbedderForSDXLWithCustomWords(embedder, hijack)
    if isinstance(embedder, FrozenCLIPEmbedder) or _is_hf_clip_embedder(embedder):
        _wrap_token_embedding(sd_hijack_clip.text_model_of(embedder.transformer).embeddings, "token_embedding", hijack)
        return sd_hijack_clip.FrozenCLIPEmbedderWithCustomWords(embedder, hijack)
    return None


def unwrap_text_encoder(wrapper):
    """The original text encoder inside an A1111 wrapper, with its plain token embedding back."""
    embedder = wrapper.wrapped
    owner = embedder.model if hasattr(embedder, "model") else sd_hijack_clip.text_model_of(embedder.transformer).embeddings
    if isinstance(owner.token_embedding, EmbeddingsWithFixes):
        owner.token_embedding = owner.token_embedding.wrapped
    return embedder


def _set_empty_prompt_cond(m):
    """The empty prompt's conditioning (its cross-attention part), which "Pad prompt/negative prompt" repeats to
    equalize lengths."""
    try:
        with torch.no_grad():
            empty = m.get_learned_conditioning([""]) if hasattr(m, "get_learned_conditioning") else m.cond_stage_model([""])
        m.cond_stage_model_empty_prompt = empty["crossattn"] if isinstance(empty, dict) else empty
    except Exception:
        errors.report("Could not encode the empty prompt (Pad prompt/negative prompt will not pad)", exc_info=True)


def flatten(el):
    flattened = [flatten(children) for children in el.children()]
    res = [el]
    for c in flattened:
        res += c
    return res


class StableDiffusionModelHijack:
    fixes = None
    layers = None
    circular_enabled = False
    clip = None
    optimization_method = None
    _counting_clip = None

    def __init__(self):
        self.extra_generation_params = {}
        self.comments = []
        self.embedding_db = EmbeddingDatabase()
        self.embedding_db.add_embedding_dir(shared.cmd_opts.embeddings_dir)

    def apply_optimizations(self, option=None):
        self.optimization_method = "sdp"  # the UNet always uses torch's scaled-dot-product attention

    def hijack(self, m):
        """Wraps the model's text encoders in A1111's chunking/emphasis/TI wrappers (the originals stay at `.wrapped`):
        `m.cond_stage_model` for SD1/SD2; each text embedder of SDXL's conditioner, after which `m.cond_stage_model` is
        the conditioner (or the refiner's only text encoder). Records every layer (for Tiling and extensions) and
        loads the textual-inversion embeddings that fit the model."""
        conditioner = getattr(m, "conditioner", None)
        if conditioner is not None:
            text_models = []
            for i, embedder in enumerate(conditioner.embedders):
                wrapper = wrap_text_encoder(embedder, self)
                if wrapper is not None:
                    conditioner.embedders[i] = wrapper
                if isinstance(conditioner.embedders[i], sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase):
                    text_models.append(conditioner.embedders[i])
            m.cond_stage_model = text_models[0] if len(text_models) == 1 else conditioner
        else:
            wrapper = wrap_text_encoder(m.cond_stage_model, self)
            if wrapper is not None:
                m.cond_stage_model = wrapper
        self.apply_optimizations()
        self.clip = m.cond_stage_model
        self.layers = flatten(m)
        self.embedding_db.load_textual_inversion_embeddings(force_reload=True, model=m)
        _set_empty_prompt_cond(m)

    def undo_hijack(self, m):
        conditioner = getattr(m, "conditioner", None)
        if conditioner is not None:
            for i, embedder in enumerate(conditioner.embedders):
                if isinstance(embedder, sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase):
                    conditioner.embedders[i] = unwrap_text_encoder(embedder)
            m.cond_stage_model = conditioner
        elif isinstance(m.cond_stage_model, sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase):
            m.cond_stage_model = unwrap_text_encoder(m.cond_stage_model)
        self.apply_circular(False)
        self.layers = None
        self.clip = None

    def apply_circular(self, enable):
        if self.circular_enabled == enable:
            return
        self.circular_enabled = enable
        for layer in [layer for layer in self.layers or [] if type(layer) == torch.nn.Conv2d]:
            layer.padding_mode = "circular" if enable else "zeros"

    def clear_comments(self):
        self.comments = []
        self.extra_generation_params = {}

    def get_prompt_lengths(self, text):
        """(token count, chunk capacity) of one prompt line, as the UI counter shows it ("80/150").
        Before a model is loaded, the shipped SD1 tokenizer does the counting."""
        clip = self.clip if self.clip is not None else self._tokenizer_only_clip()
        _, token_count = clip.process_texts([text])
        return token_count, clip.get_target_prompt_token_count(token_count)

    def _tokenizer_only_clip(self):
        if self._counting_clip is None:
            self._counting_clip = sd_hijack_clip.TokenizerOnlyCLIP(load_clip_tokenizer(), self)
        return self._counting_clip

    def redo_hijack(self, m):
        self.undo_hijack(m)
        self.hijack(m)


model_hijack = StableDiffusionModelHijack()
