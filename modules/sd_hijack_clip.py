"""The text encoder wrapper: 75-token chunks, emphasis, textual inversion, CLIP skip (reference §3).

A prompt is parsed for emphasis, each weighted fragment tokenized on its own, packed into chunks of 75 tokens
(comma backtracking, BREAK, embeddings never split), each chunk wrapped in BOS/EOS to 77 and encoded, weights
applied per the emphasis mode, and the chunks concatenated along the token axis. Extensions subclass and call
these classes by their A1111 names.
"""
import math
import types
from collections import namedtuple

import torch

from modules import devices, prompt_parser, sd_emphasis
from modules.shared import opts


class PromptChunk:
    """Up to 75 tokens with their weights, plus where textual-inversion vectors go."""

    def __init__(self):
        self.tokens = []
        self.multipliers = []
        self.fixes = []


PromptChunkFix = namedtuple("PromptChunkFix", ["offset", "embedding"])
"""An embedding's vectors start at `offset` in the chunk (0 = the first token after BOS)."""


class TextConditionalModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from modules import sd_hijack  # here, not at the top: sd_hijack imports this module
        self.hijack = sd_hijack.model_hijack
        self.chunk_length = 75
        self.is_trainable = False
        self.input_key = "txt"
        self.return_pooled = False
        self.comma_token = None
        self.id_start = None
        self.id_end = None
        self.id_pad = None

    def empty_chunk(self):
        chunk = PromptChunk()
        chunk.tokens = [self.id_start] + [self.id_end] * (self.chunk_length + 1)
        chunk.multipliers = [1.0] * (self.chunk_length + 2)
        return chunk

    def get_target_prompt_token_count(self, token_count):
        return math.ceil(max(token_count, 1) / self.chunk_length) * self.chunk_length

    def device_for_tokens(self):
        wrapped = getattr(self, "wrapped", None)
        device = getattr(wrapped, "device", None)
        return device if isinstance(device, torch.device) else devices.device

    def tokenize(self, texts):
        raise NotImplementedError

    def encode_with_transformers(self, tokens):
        raise NotImplementedError

    def encode_embedding_init_text(self, init_text, nvpt):
        raise NotImplementedError

    def tokenize_line(self, line):
        """One prompt line -> (chunks, token count shown in the UI counter).

        Each weighted fragment is tokenized on its own; chunks hold 75 tokens and are padded with EOS and wrapped in
        BOS/EOS to 77; BREAK starts a new chunk; a chunk that overflows moves the words after its last comma (if
        within `comma_padding_backtrack` tokens) to the next chunk; an embedding is never split across chunks.
        """
        if getattr(sd_emphasis.get_current_option(opts.emphasis), "parses_prompt", True):
            parsed = prompt_parser.parse_prompt_attention(line)
        else:
            parsed = [[line, 1.0]]  # emphasis "None": brackets are plain text

        tokenized = self.tokenize([text for text, _ in parsed])
        chunks = []
        chunk = PromptChunk()
        token_count = 0
        last_comma = -1

        def next_chunk(is_last=False):
            nonlocal token_count, last_comma, chunk
            if is_last:
                token_count += len(chunk.tokens)
            else:
                token_count += self.chunk_length
            to_add = self.chunk_length - len(chunk.tokens)
            if to_add > 0:
                chunk.tokens += [self.id_end] * to_add
                chunk.multipliers += [1.0] * to_add
            chunk.tokens = [self.id_start] + chunk.tokens + [self.id_end]
            chunk.multipliers = [1.0] + chunk.multipliers + [1.0]
            last_comma = -1
            chunks.append(chunk)
            chunk = PromptChunk()

        for tokens, (text, weight) in zip(tokenized, parsed):
            if text == "BREAK" and weight == -1:
                next_chunk()
                continue
            position = 0
            while position < len(tokens):
                token = tokens[position]
                if token == self.comma_token:
                    last_comma = len(chunk.tokens)
                # A prompt that does not fit is cut at its last comma if that is close enough, so words stay together.
                elif opts.comma_padding_backtrack != 0 and len(chunk.tokens) == self.chunk_length and last_comma != -1 and len(chunk.tokens) - last_comma <= opts.comma_padding_backtrack:
                    break_location = last_comma + 1
                    reloc_tokens = chunk.tokens[break_location:]
                    reloc_mults = chunk.multipliers[break_location:]
                    chunk.tokens = chunk.tokens[:break_location]
                    chunk.multipliers = chunk.multipliers[:break_location]
                    next_chunk()
                    chunk.tokens = reloc_tokens
                    chunk.multipliers = reloc_mults

                if len(chunk.tokens) == self.chunk_length:
                    next_chunk()

                embedding, embedding_length_in_tokens = self.hijack.embedding_db.find_embedding_at_position(tokens, position)
                if embedding is None:
                    chunk.tokens.append(token)
                    chunk.multipliers.append(weight)
                    position += 1
                    continue

                emb_len = int(embedding.vectors)
                if len(chunk.tokens) + emb_len > self.chunk_length:
                    next_chunk()
                chunk.fixes.append(PromptChunkFix(len(chunk.tokens), embedding))
                chunk.tokens += [0] * emb_len
                chunk.multipliers += [weight] * emb_len
                position += embedding_length_in_tokens

        if chunk.tokens or not chunks:
            next_chunk(is_last=True)
        return chunks, token_count

    def process_texts(self, texts):
        """Tokenize each distinct line once; returns the chunk lists and the largest token count."""
        token_count = 0
        cache = {}
        batch_chunks = []
        for line in texts:
            if line in cache:
                chunks = cache[line]
            else:
                chunks, current_token_count = self.tokenize_line(line)
                token_count = max(current_token_count, token_count)
                cache[line] = chunks
            batch_chunks.append(chunks)
        return batch_chunks, token_count

    def encode(self, texts):
        # the model's get_learned_conditioning calls encode when it exists; go through __call__ so hooks still run
        return self(texts)

    def forward(self, texts):
        """(B, 77*k, C) conditioning for a batch of prompt texts."""
        batch_chunks, token_count = self.process_texts(texts)
        used_embeddings = {}
        chunk_count = max([len(x) for x in batch_chunks])
        zs = []
        for i in range(chunk_count):
            batch_chunk = [chunks[i] if i < len(chunks) else self.empty_chunk() for chunks in batch_chunks]
            tokens = [x.tokens for x in batch_chunk]
            multipliers = [x.multipliers for x in batch_chunk]
            self.hijack.fixes = [x.fixes for x in batch_chunk]
            for fixes in self.hijack.fixes:
                for _position, embedding in fixes:
                    used_embeddings[embedding.name] = embedding
            devices.torch_npu_set_device()
            z = self.process_tokens(tokens, multipliers)
            zs.append(z)

        if opts.textual_inversion_add_hashes_to_infotext and used_embeddings:
            hashes = []
            for name, embedding in used_embeddings.items():
                shorthash = embedding.shorthash
                if not shorthash:
                    continue
                name = name.replace(":", "").replace(",", "")
                hashes.append(f"{name}: {shorthash}")
            if hashes:
                if self.hijack.extra_generation_params.get("TI hashes"):
                    hashes.append(self.hijack.extra_generation_params.get("TI hashes"))
                self.hijack.extra_generation_params["TI hashes"] = ", ".join(dict.fromkeys(hashes))

        if any(x for x in texts if "(" in x or "[" in x) and opts.emphasis != "Original":
            self.hijack.extra_generation_params["Emphasis"] = opts.emphasis

        if self.return_pooled:
            return torch.hstack(zs), zs[0].pooled
        return torch.hstack(zs)

    def process_tokens(self, remade_batch_tokens, batch_multipliers):
        """Encode one chunk per prompt, then apply the emphasis weights."""
        tokens = torch.asarray(remade_batch_tokens).to(self.device_for_tokens())
        # Padding after the first EOS is a different token for OpenCLIP (id_pad=0); SD1 pads with EOS itself.
        if self.id_end != self.id_pad:
            for batch_pos in range(len(remade_batch_tokens)):
                index = remade_batch_tokens[batch_pos].index(self.id_end)
                tokens[batch_pos, index + 1:tokens.shape[1]] = self.id_pad

        z = self.encode_with_transformers(tokens)
        pooled = getattr(z, "pooled", None)

        emphasis = sd_emphasis.get_current_option(opts.emphasis)()
        emphasis.tokens = remade_batch_tokens
        emphasis.multipliers = torch.asarray(batch_multipliers).to(z.device, dtype=z.dtype)
        emphasis.z = z
        emphasis.after_transformers()
        z = emphasis.z
        if pooled is not None:
            z.pooled = pooled
        return z


class FrozenCLIPEmbedderWithCustomWordsBase(TextConditionalModel):
    """A1111's base for CLIP wrappers: `wrapped` is the model's original text encoder."""

    def __init__(self, wrapped, hijack):
        super().__init__()
        from modules import sd_hijack  # here, not at the top: sd_hijack imports this module
        self.hijack = hijack
        self.wrapped = wrapped
        self.is_trainable = getattr(wrapped, "is_trainable", False)
        self.input_key = getattr(wrapped, "input_key", "txt")
        self.return_pooled = getattr(self.wrapped, "return_pooled", False)
        self.legacy_ucg_val = None


class FrozenCLIPEmbedderWithCustomWords(FrozenCLIPEmbedderWithCustomWordsBase):
    """SD1's CLIP ViT-L/14 text encoder (transformers' layout) with A1111's chunking."""

    def __init__(self, wrapped, hijack):
        super().__init__(wrapped, hijack)
        self.tokenizer = wrapped.tokenizer
        vocab = self.tokenizer.get_vocab()
        self.comma_token = vocab.get(",</w>", None)
        self.token_mults = {}
        self.id_start = self.wrapped.tokenizer.bos_token_id
        self.id_end = self.wrapped.tokenizer.eos_token_id
        self.id_pad = self.id_end

    def tokenize(self, texts):
        return self.wrapped.tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"]

    def encode_with_transformers(self, tokens):
        clip_skip = max(1, int(opts.CLIP_stop_at_last_layers))
        outputs = self.wrapped.transformer(input_ids=tokens, output_hidden_states=clip_skip > 1)
        if clip_skip > 1:
            # clip skip 2 = the penultimate layer, then the final layer norm (as the reference does for SD1);
            # a skip deeper than the model is clamped to its first layer's input
            hidden_states = outputs.hidden_states
            z = hidden_states[-min(clip_skip, len(hidden_states))]
            z = text_model_of(self.wrapped.transformer).final_layer_norm(z)
        else:
            z = outputs.last_hidden_state
        return z

    def encode_embedding_init_text(self, init_text, nvpt):
        embedding_layer = text_model_of(self.wrapped.transformer).embeddings
        ids = self.wrapped.tokenizer(init_text, max_length=nvpt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        token_embedding = getattr(embedding_layer.token_embedding, "wrapped", embedding_layer.token_embedding)
        return token_embedding(ids.to(token_embedding.weight.device)).squeeze(0)


class FrozenCLIPEmbedderForSDXLWithCustomWords(FrozenCLIPEmbedderWithCustomWords):
    """SDXL's CLIP-L: the hidden state its config names (the penultimate layer, no final LayerNorm); with the
    "Clip skip SDXL" setting, the hidden state CLIP skip selects instead (A1111's sdxl_clip_l_skip)."""

    def encode_with_transformers(self, tokens):
        outputs = self.wrapped.transformer(input_ids=tokens, output_hidden_states=self.wrapped.layer == "hidden" or opts.sdxl_clip_l_skip)
        if opts.sdxl_clip_l_skip is True:
            return outputs.hidden_states[-opts.CLIP_stop_at_last_layers]
        if self.wrapped.layer == "last":
            return outputs.last_hidden_state
        return outputs.hidden_states[self.wrapped.layer_idx]


def text_model_of(transformer):
    """The CLIP text model inside `transformer`: transformers 4 put it at `.text_model`, transformers 5 does not."""
    return getattr(transformer, "text_model", transformer)


class TokenizerOnlyCLIP(FrozenCLIPEmbedderWithCustomWords):
    """Chunking without an encoder, for counting tokens before a model is loaded."""

    def __init__(self, tokenizer, hijack):
        TextConditionalModel.__init__(self)  # skips the bases' encoder setup: there is no encoder
        self.hijack = hijack
        self.wrapped = types.SimpleNamespace(tokenizer=tokenizer)
        self.tokenizer = tokenizer
        self.comma_token = tokenizer.get_vocab().get(",</w>", None)
        self.id_start = tokenizer.bos_token_id
        self.id_end = tokenizer.eos_token_id
        self.id_pad = self.id_end
