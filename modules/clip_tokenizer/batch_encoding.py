"""What the light CLIP tokenizer's `__call__` returns: transformers' BatchEncoding as callers use it.

A dict (`batch["input_ids"]`, `**batch`, `.keys()`) whose keys also read as attributes (`batch.input_ids`), with the
per-sequence `tokenizers.Encoding`s behind it (`batch[0]`, `.tokens()`, `.word_ids()`) and `.to(device)`.
"""
from collections import UserDict


class BatchEncoding(UserDict):
    def __init__(self, data=None, encodings=None):
        super().__init__(data)
        self._encodings = encodings

    def __getitem__(self, item):
        """A key's value; an int: that sequence's `tokenizers.Encoding`; a slice: every value sliced."""
        if isinstance(item, str):
            return self.data[item]
        if self._encodings is not None:
            return self._encodings[item]
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.data.items()}
        raise KeyError("a BatchEncoding is indexed by a key (str), a sequence (int) or a slice")

    def __getattr__(self, item):
        if item.startswith("_") or item == "data":  # (not set yet while unpickling: no recursion)
            raise AttributeError(item)
        try:
            return self.data[item]
        except KeyError:
            raise AttributeError(item) from None

    def __getstate__(self):
        return {"data": self.data, "encodings": self._encodings}

    def __setstate__(self, state):
        self.data = state["data"]
        self._encodings = state["encodings"]

    @property
    def encodings(self):
        return self._encodings

    @property
    def is_fast(self):
        return self._encodings is not None

    @property
    def n_sequences(self):
        return self._encodings[0].n_sequences if self._encodings else None

    def tokens(self, batch_index=0):
        return self._encodings[batch_index].tokens

    def word_ids(self, batch_index=0):
        return self._encodings[batch_index].word_ids

    def sequence_ids(self, batch_index=0):
        return self._encodings[batch_index].sequence_ids

    def to(self, device, *, non_blocking=False):
        """Every tensor moved to `device`; the same object back, as transformers does."""
        self.data = {key: value.to(device=device, non_blocking=non_blocking) if callable(getattr(value, "to", None))
                     else value for key, value in self.data.items()}
        return self
