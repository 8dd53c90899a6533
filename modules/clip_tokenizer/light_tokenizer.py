"""SD's CLIP tokenizer without importing transformers: transformers 5's CLIPTokenizer API over the same Rust pipeline.

transformers' CLIPTokenizer is a thin wrapper around a `tokenizers` pipeline; importing it costs ~2.2 s and ~37 MB at
every start and model load. This class builds that pipeline itself (backend.py) and answers, with transformers'
semantics, what the engine and extensions call: `__call__`, `encode`, `tokenize`, `decode`, `batch_decode`, the
vocabulary, the special tokens, and the transformers-4 helpers of modules/transformers_compat.py.

Anything else (a rare attribute, an option of `__call__` not handled here such as `text_pair` or `return_tensors="np"`)
loads transformers' own CLIPTokenizer once, hands it this object's settings, and from then on that tokenizer answers
every call, so state it changes (added tokens, special tokens) is never split between two objects.
"""
import functools
from collections.abc import Mapping
import logging
import threading

from modules import transformers_compat
from modules.clip_tokenizer.backend import END_OF_WORD_SUFFIX, build_clip_bpe_tokenizer, read_tokenizer_config
from modules.clip_tokenizer.batch_encoding import BatchEncoding

log = logging.getLogger(__name__)

# the options of transformers' `__call__` answered here; any other goes to transformers' tokenizer
CALL_OPTIONS = frozenset((
    "add_special_tokens", "padding", "truncation", "max_length", "stride", "pad_to_multiple_of", "padding_side",
    "return_tensors", "return_token_type_ids", "return_attention_mask", "return_overflowing_tokens",
    "return_special_tokens_mask", "return_offsets_mapping", "return_length", "verbose"))
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("only_first", "only_second", "longest_first", "do_not_truncate")
LARGE_INTEGER = int(1e20)  # transformers: a model_max_length above this means "no limit"
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
OWN_ATTRIBUTES = frozenset(("_backend", "_lock", "_settings", "_directory", "_full"))


class _TransformersNeeded(Exception):
    """Raised by a light method, before doing anything, for a call form only transformers' tokenizer answers."""


def _light(method):
    """The method answered here until transformers' tokenizer is loaded, then by that tokenizer's same method."""
    name = method.__name__

    @functools.wraps(method)
    def answer(self, *args, **kwargs):
        if self.__dict__.get("_full") is None:
            try:
                return method(self, *args, **kwargs)
            except _TransformersNeeded:
                pass
        return getattr(self._transformers_tokenizer(), name)(*args, **kwargs)
    return answer


def _light_property(getter):
    name = getter.__name__

    def get(self):
        full = self.__dict__.get("_full")
        return getter(self) if full is None else getattr(full, name)
    return property(get, doc=getter.__doc__)


def _setting(name):
    """A plain setting (a special token, model_max_length, a side), kept here until transformers' tokenizer holds it."""
    def get(self):
        full = self.__dict__.get("_full")
        if full is not None:
            return getattr(full, name)
        value = self._settings[name]
        return str(value) if name in SPECIAL_TOKENS and value is not None else value

    def set(self, value):
        full = self.__dict__.get("_full")
        if full is not None:
            setattr(full, name, value)
        elif name in SPECIAL_TOKENS and value is not None and not isinstance(value, str) and \
                type(value).__name__ != "AddedToken":
            raise ValueError(f"Cannot set a non-string value as the {name}")
        else:
            self._settings[name] = value
    return property(get, set)


def _special_token_id(name):
    def get(self):
        full = self.__dict__.get("_full")
        if full is not None:
            return getattr(full, name + "_id")
        token = getattr(self, name)
        return None if token is None else self.convert_tokens_to_ids(token)

    def set(self, value):
        setattr(self, name, None if value is None else self.convert_ids_to_tokens(value))
    return property(get, set)


def _loaded_settings(config):
    """The settings transformers' from_pretrained gives a CLIPTokenizer with this tokenizer_config.json."""
    settings = {name: config.get(name) for name in SPECIAL_TOKENS}
    settings.update(model_max_length=config["model_max_length"], padding_side="right", truncation_side="right")
    return settings


def _is_text(text):
    """One prompt or a non-empty batch of prompts (pre-split words and pairs go to transformers)."""
    return isinstance(text, str) or (isinstance(text, (list, tuple)) and len(text) > 0
                                     and all(isinstance(item, str) for item in text))


def _plain(value):
    """Token ids as Python ints and lists, from tensors, arrays, numpy ints or nested lists (as transformers' decode
    reads them)."""
    if isinstance(value, (int, float, str)) or value is None:
        return value
    if isinstance(value, Mapping):  # a dict, a BatchEncoding
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if callable(getattr(value, "tolist", None)):  # torch tensor, numpy array or scalar
        return value.tolist()
    return value


def _is_empty(value):
    return len(value) == 0 or isinstance(value[0], (list, tuple)) and all(_is_empty(item) for item in value)


def _as_tensor(key, value):
    import torch
    try:
        return torch.tensor(value, dtype=torch.int64 if _is_empty(value) else None)
    except ValueError as error:
        raise ValueError(f"Unable to create a tensor of `{key}`: the sequences have different lengths; ask for "
                         "padding=True (or 'max_length') and truncation=True to get batched tensors") from error


class LightCLIPTokenizer:
    """transformers 5's CLIPTokenizer, as loaded from `directory` (vocab.json, merges.txt, tokenizer_config.json)."""

    _convert_token_to_id = transformers_compat._convert_token_to_id
    encoder = property(transformers_compat._encoder)
    byte_encoder = property(transformers_compat._byte_encoder)
    byte_decoder = property(transformers_compat._byte_decoder)
    is_fast = True

    def __init__(self, directory):
        config = read_tokenizer_config(directory)
        self._directory = directory
        self._lock = threading.RLock()
        self._full = None
        self._backend = build_clip_bpe_tokenizer(directory, config)
        self._settings = _loaded_settings(config)

    bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token = map(_setting, SPECIAL_TOKENS)
    bos_token_id, eos_token_id, unk_token_id, sep_token_id, pad_token_id, cls_token_id, mask_token_id = map(
        _special_token_id, SPECIAL_TOKENS)
    model_max_length, padding_side, truncation_side = map(
        _setting, ("model_max_length", "padding_side", "truncation_side"))

    # -- transformers' own tokenizer, for everything not answered here ------------------------------------------------

    def _transformers_tokenizer(self):
        """transformers' CLIPTokenizer over the same files, given this object's settings and plain attributes; it
        answers every call from now on."""
        with self._lock:
            if self._full is None:
                log.info("loading transformers' CLIPTokenizer for a call the light CLIP tokenizer does not answer")
                from transformers import CLIPTokenizer
                transformers_compat.apply(CLIPTokenizer)
                full = CLIPTokenizer.from_pretrained(self._directory, local_files_only=True)
                loaded = _loaded_settings(read_tokenizer_config(self._directory))
                for name, value in self._settings.items():
                    if value != loaded[name]:  # changed here since loading
                        setattr(full, name, value)
                for name in [name for name in self.__dict__ if name not in OWN_ATTRIBUTES]:
                    setattr(full, name, self.__dict__.pop(name))
                self._full = full
            return self._full

    def __getattr__(self, name):
        if name.startswith("__") or name in OWN_ATTRIBUTES:  # copy/pickle probes, or not set yet while unpickling
            raise AttributeError(name)
        return getattr(self._transformers_tokenizer(), name)

    def __setattr__(self, name, value):
        full = self.__dict__.get("_full")
        if full is None or name in OWN_ATTRIBUTES or isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
        else:
            setattr(full, name, value)

    def __getstate__(self):
        return {name: value for name, value in self.__dict__.items() if name != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__["_lock"] = threading.RLock()

    # -- encoding -----------------------------------------------------------------------------------------------------

    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of):
        """(padding, truncation, max_length) as transformers resolves them from `__call__`'s arguments."""
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # a max_length alone truncates
        if padding is False:
            padding = "do_not_pad"
        elif padding is True:
            padding = "longest"
        padding = getattr(padding, "value", padding)
        if padding not in PADDING_STRATEGIES:
            raise ValueError(f"{padding!r} is not a valid PaddingStrategy, please select one of "
                             f"{list(PADDING_STRATEGIES)}")
        if truncation is False or truncation is None:
            truncation = "do_not_truncate"
        elif truncation is True:
            truncation = "longest_first"
        truncation = getattr(truncation, "value", truncation)
        if truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(f"{truncation!r} is not a valid TruncationStrategy, please select one of "
                             f"{list(TRUNCATION_STRATEGIES)}")
        if max_length is None:
            unlimited = self.model_max_length > LARGE_INTEGER
            if padding == "max_length":
                padding, max_length = ("do_not_pad", None) if unlimited else (padding, self.model_max_length)
            if truncation != "do_not_truncate" and unlimited:
                truncation = "do_not_truncate"
            elif truncation != "do_not_truncate":
                max_length = self.model_max_length
        if padding != "do_not_pad" and (self.pad_token is None or self.pad_token_id < 0):
            raise ValueError("Asking to pad but the tokenizer does not have a padding token (set tokenizer.pad_token)")
        if (truncation != "do_not_truncate" and padding != "do_not_pad" and pad_to_multiple_of is not None
                and max_length is not None and max_length % pad_to_multiple_of != 0):
            raise ValueError(f"Truncation and padding are both activated but truncation length ({max_length}) is not "
                             f"a multiple of pad_to_multiple_of ({pad_to_multiple_of}).")
        return padding, truncation, max_length

    def _configure_backend(self, padding, truncation, max_length, stride, pad_to_multiple_of, padding_side):
        """Set the Rust tokenizer's truncation and padding as transformers does before each encode."""
        backend = self._backend
        if truncation == "do_not_truncate":
            if backend.truncation is not None:
                backend.no_truncation()
        else:
            target = dict(max_length=max_length, stride=stride, strategy=truncation, direction=self.truncation_side)
            current = backend.truncation
            if current is None or {key: current.get(key) for key in target} != target:
                backend.enable_truncation(**target)
        if padding == "do_not_pad":
            if backend.padding is not None:
                backend.no_padding()
        else:
            target = dict(length=max_length if padding == "max_length" else None,
                          direction=padding_side if padding_side is not None else self.padding_side,
                          pad_id=self.pad_token_id, pad_token=self.pad_token, pad_type_id=0,
                          pad_to_multiple_of=pad_to_multiple_of)
            if backend.padding != target:
                backend.enable_padding(**target)

    def _encode(self, texts, add_special_tokens=True, padding="do_not_pad", truncation="do_not_truncate",
                max_length=None, stride=0, pad_to_multiple_of=None, padding_side=None):
        """`tokenizers.Encoding`s of `texts` (a list), under the lock: the backend's settings are shared state."""
        with self._lock:
            self._configure_backend(padding, truncation, max_length, stride, pad_to_multiple_of, padding_side)
            return self._backend.encode_batch(texts, add_special_tokens=add_special_tokens, is_pretokenized=False)

    @_light
    def __call__(self, text=None, text_pair=None, add_special_tokens=True, padding=False, truncation=None,
                 max_length=None, stride=0, pad_to_multiple_of=None, padding_side=None, return_tensors=None,
                 return_token_type_ids=None, return_attention_mask=None, return_overflowing_tokens=False,
                 return_special_tokens_mask=False, return_offsets_mapping=False, return_length=False, verbose=True,
                 **other_options):
        """`tokenizer(prompt or prompts, ...)`: a BatchEncoding of input_ids, attention_mask and what was asked for."""
        return_tensors = getattr(return_tensors, "value", return_tensors)
        if other_options or text_pair is not None or not _is_text(text) or return_tensors not in (None, "pt"):
            raise _TransformersNeeded
        padding, truncation, max_length = self._strategies(padding, truncation, max_length, pad_to_multiple_of)
        batched = not isinstance(text, str)
        encodings = self._encode(list(text) if batched else [text], add_special_tokens, padding, truncation,
                                 max_length, stride, pad_to_multiple_of, padding_side)
        return_attention_mask = True if return_attention_mask is None else return_attention_mask
        fields = {"input_ids": "ids", "token_type_ids": "type_ids", "attention_mask": "attention_mask",
                  "special_tokens_mask": "special_tokens_mask", "offset_mapping": "offsets"}
        wanted = {"input_ids": True, "token_type_ids": return_token_type_ids, "attention_mask": return_attention_mask,
                  "special_tokens_mask": return_special_tokens_mask, "offset_mapping": return_offsets_mapping}
        keys = [key for key, asked in wanted.items() if asked]
        data = {key: [] for key in keys + (["length"] if return_length else [])}
        rows, sample_of_row = [], []
        for sample, encoding in enumerate(encodings):
            for row in [encoding, *encoding.overflowing] if return_overflowing_tokens else [encoding]:
                rows.append(row)
                sample_of_row.append(sample)
                for key in keys:
                    data[key].append(getattr(row, fields[key]))
                if return_length:
                    data["length"].append(len(row.ids))
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_of_row
        if return_tensors == "pt":
            data = {key: _as_tensor(key, value) for key, value in data.items()}
        elif not batched and not return_overflowing_tokens:  # one prompt: no batch dimension
            data = {key: value[0] if value and isinstance(value[0], list) else value for key, value in data.items()}
        return BatchEncoding(data, rows)

    @_light
    def encode(self, text, text_pair=None, add_special_tokens=True, padding=False, truncation=None, max_length=None,
               stride=0, padding_side=None, return_tensors=None, **options):
        """The input ids of `text` (with the start and end tokens unless add_special_tokens=False)."""
        if text_pair is not None or not options.keys() <= CALL_OPTIONS:
            raise _TransformersNeeded
        return self(text, add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                    max_length=max_length, stride=stride, padding_side=padding_side, return_tensors=return_tensors,
                    **options)["input_ids"]

    @_light
    def tokenize(self, text, pair=None, add_special_tokens=False, **options):
        """`text`'s BPE tokens as strings ("cat</w>"), no start and end tokens unless asked."""
        if pair is not None or options or not isinstance(text, str):
            raise _TransformersNeeded
        return self._encode([text], add_special_tokens)[0].tokens

    # -- decoding -----------------------------------------------------------------------------------------------------

    def _decode_one(self, token_ids, skip_special_tokens):
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if isinstance(token_ids, dict):
            token_ids = token_ids["input_ids"]
        text = self._backend.decode(token_ids, skip_special_tokens=skip_special_tokens)
        return text.replace(END_OF_WORD_SUFFIX, " ").strip()  # as transformers' CLIPTokenizer wraps its decode

    @_light
    def decode(self, token_ids, skip_special_tokens=False, **options):
        """The text of one sequence of ids (a list, tensor or array), or a list of texts for a batch of them.
        (clean_up_tokenization_spaces does nothing: transformers ignores it for BPE tokenizers.)"""
        token_ids = _plain(token_ids)
        if isinstance(token_ids, list) and token_ids and isinstance(token_ids[0], list):
            return [self._decode_one(sequence, skip_special_tokens) for sequence in token_ids]
        return self._decode_one(token_ids, skip_special_tokens)

    @_light
    def batch_decode(self, sequences, skip_special_tokens=False, clean_up_tokenization_spaces=None, **options):
        """A list of texts, one per sequence of ids."""
        sequences = _plain(sequences)
        if len(sequences) == 0:
            return []
        texts = self.decode(sequences, skip_special_tokens=skip_special_tokens)
        return [texts] if isinstance(texts, str) else texts

    # -- vocabulary and special tokens --------------------------------------------------------------------------------

    @_light
    def get_vocab(self):
        """token string -> id, special tokens included (a new dict each call)."""
        return self._backend.get_vocab(with_added_tokens=True)

    @_light_property
    def vocab(self):
        return self._backend.get_vocab(with_added_tokens=True)

    @_light_property
    def vocab_size(self):
        """Size of the BPE vocabulary (without added tokens)."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    @_light
    def __len__(self):
        return self._backend.get_vocab_size(with_added_tokens=True)

    def __bool__(self):
        return True

    @_light
    def convert_tokens_to_ids(self, tokens):
        """The id of a token string (the unknown token's id if it has none), or a list of them."""
        if isinstance(tokens, str):
            token_id = self._backend.token_to_id(tokens)
            return self.unk_token_id if token_id is None else token_id
        return [self.convert_tokens_to_ids(token) for token in tokens]

    @_light
    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        """The token string of an id (None if out of range), or a list of them."""
        if isinstance(ids, int):
            return self._backend.id_to_token(ids)
        skipped = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._backend.id_to_token(int(index)) for index in ids if int(index) not in skipped]

    @_light_property
    def special_tokens_map(self):
        return {name: getattr(self, name) for name in SPECIAL_TOKENS if getattr(self, name) is not None}

    @_light_property
    def all_special_tokens(self):
        return list(dict.fromkeys(self.special_tokens_map.values()))

    @_light_property
    def all_special_ids(self):
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @_light_property
    def added_tokens_decoder(self):
        """id -> AddedToken for the special tokens (the `tokenizers` AddedToken, as transformers 5 returns)."""
        return self._backend.get_added_tokens_decoder()

    @_light_property
    def added_tokens_encoder(self):
        return {token.content: token_id for token_id, token in sorted(self.added_tokens_decoder.items())}

    @_light
    def get_added_vocab(self):
        return self.added_tokens_encoder

    @_light
    def num_special_tokens_to_add(self, pair=False):
        return self._backend.num_special_tokens_to_add(pair)

    @_light_property
    def max_len_single_sentence(self):
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @_light_property
    def name_or_path(self):
        return self._directory
