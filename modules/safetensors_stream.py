"""Safetensors files read tensor by tensor from a memory map, and written tensor by tensor as they are produced.

The format: 8 bytes little-endian header length N, N bytes of JSON (per tensor: dtype, shape, data_offsets relative
to the end of the header; optional "__metadata__" of str -> str), then the raw little-endian tensor data.
Neither side ever holds a whole file in memory: the reader hands out zero-copy views of a read-only memory map and
lets go of the pages once a tensor is used; the writer emits the header first (every tensor's dtype and shape is
known in advance), then each tensor's bytes in a fixed order.
"""
import json
import mmap
import os
import struct
import sys
import warnings
from dataclasses import dataclass

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
for _name, _attr in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"), ("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64")):
    if hasattr(torch, _attr):
        DTYPES[_name] = getattr(torch, _attr)
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library refuses larger headers too
PAGE = mmap.PAGESIZE


class SafetensorsError(ValueError):
    """The file is not a readable safetensors file, or a write does not follow the announced layout."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: torch.dtype
    shape: tuple
    begin: int  # absolute byte offset in the file
    end: int

    @property
    def nbytes(self):
        return self.end - self.begin


def dtype_itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def tensor_nbytes(dtype: torch.dtype, shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n * dtype_itemsize(dtype)


def read_header(path: str):
    """(header dict, absolute offset of the data) of a safetensors file; raises SafetensorsError with the reason."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SafetensorsError("file is too short to be a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise SafetensorsError("not a safetensors file (bad header length)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"not a safetensors file (header is not JSON: {e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError("not a safetensors file (header is not a JSON object)")
    return header, 8 + n


class SafetensorsReader:
    """Tensors of one safetensors file, each read on demand from a memory map.

    The map is read-only by default; `copy_on_write=True` maps it privately, so the tensors handed out may be written
    to (the writes stay in this process) and may become a model's parameters as they are.
    """

    def __init__(self, path: str, copy_on_write: bool = False):
        self.path = path
        header, data_start = read_header(path)
        size = os.path.getsize(path)
        meta = header.pop("__metadata__", None) or {}
        self.metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
        self.infos = {}
        for key, entry in header.items():
            try:
                dtype = DTYPES[entry["dtype"]]
                shape = tuple(int(d) for d in entry["shape"])
                begin, end = (int(x) for x in entry["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise SafetensorsError(f"tensor {key!r} has an unsupported dtype or a malformed header entry") from None
            if end - begin != tensor_nbytes(dtype, shape) or data_start + end > size or begin < 0:
                raise SafetensorsError(f"tensor {key!r}: data offsets do not match its shape or lie past the end of the file (truncated download?)")
            self.infos[key] = TensorInfo(dtype, shape, data_start + begin, data_start + end)
        access = mmap.ACCESS_COPY if copy_on_write else mmap.ACCESS_READ
        with open(path, "rb") as file:  # the map keeps its own handle: no file stays open while tensors live on
            self._mm = mmap.mmap(file.fileno(), 0, access=access) if size > 0 else None
        if self._mm is not None and hasattr(mmap, "MADV_SEQUENTIAL"):
            self._mm.madvise(mmap.MADV_SEQUENTIAL)

    def keys(self):
        return list(self.infos)

    def __contains__(self, key):
        return key in self.infos

    def info(self, key) -> TensorInfo:
        return self.infos[key]

    def raw(self, key) -> memoryview:
        """The tensor's bytes, straight from the memory map (no copy)."""
        info = self.infos[key]
        return memoryview(self._mm)[info.begin:info.end]

    def get_tensor(self, key) -> torch.Tensor:
        """A view of the tensor in the memory map (read-only unless copy_on_write: do not modify it in place then)."""
        info = self.infos[key]
        if info.nbytes == 0:
            return torch.empty(info.shape, dtype=info.dtype)
        itemsize = dtype_itemsize(info.dtype)
        count = info.nbytes // itemsize
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "buffer is not writable": we never write through these views
            if info.begin % itemsize:
                # a writer that did not align its data: copy this one tensor into aligned memory
                return torch.frombuffer(bytearray(self._mm[info.begin:info.end]), dtype=info.dtype).reshape(info.shape)
            return torch.frombuffer(self._mm, dtype=info.dtype, count=count, offset=info.begin).reshape(info.shape)

    def release(self, key):
        """Drop the tensor's pages from this process (they stay in the OS page cache), so RSS does not grow.

        The tensor stays readable (its pages come back from the file); with copy_on_write, writes made to it are lost."""
        if self._mm is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        info = self.infos[key]
        start = info.begin - info.begin % PAGE
        length = info.end - start
        if length > 0:
            try:
                self._mm.madvise(mmap.MADV_DONTNEED, start, length)
            except (OSError, ValueError):
                pass

    def close(self):
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass  # a tensor view is still alive; the map closes when it is collected
            self._mm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def layout_order(plan: dict) -> list:
    """Order of the tensors' data: widest dtype first (so every tensor stays aligned), then by name."""
    return sorted(plan, key=lambda k: (-dtype_itemsize(plan[k][0]), k))


def build_header(plan: dict, metadata: dict | None) -> bytes:
    """The header bytes (length prefix included) for `plan` = {key: (dtype, shape)}; deterministic for equal input."""
    offsets = {}
    pos = 0
    for key in layout_order(plan):
        dtype, shape = plan[key]
        n = tensor_nbytes(dtype, shape)
        offsets[key] = (pos, pos + n)
        pos += n
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise SafetensorsError(f"metadata value of {k!r} must be a string")
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    for key in sorted(plan):
        dtype, shape = plan[key]
        header[key] = {"dtype": DTYPE_NAMES[dtype], "shape": [int(d) for d in shape], "data_offsets": list(offsets[key])}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)  # pad so the data starts 8-byte aligned, as the safetensors library does
    return struct.pack("<Q", len(text)) + text


class SafetensorsWriter:
    """Writes a safetensors file to an open binary file: the header at once, then tensors in `self.order`."""

    def __init__(self, fileobj, plan: dict, metadata: dict | None = None):
        if sys.byteorder != "little":
            raise SafetensorsError("writing safetensors on a big-endian machine is not supported")
        for key, (dtype, _) in plan.items():
            if dtype not in DTYPE_NAMES:
                raise SafetensorsError(f"tensor {key!r}: dtype {dtype} cannot be stored in safetensors")
        self.file = fileobj
        self.plan = dict(plan)
        self.order = layout_order(self.plan)
        self._next = 0
        header = build_header(self.plan, metadata)
        self.total_bytes = len(header) + sum(tensor_nbytes(*self.plan[k]) for k in self.order)
        self.file.write(header)

    @property
    def next_key(self):
        return self.order[self._next] if self._next < len(self.order) else None

    def write(self, key, data):
        """Write the next tensor: a torch.Tensor of the planned dtype and shape, or its raw bytes."""
        if key != self.next_key:
            raise SafetensorsError(f"tensor {key!r} written out of order (expected {self.next_key!r})")
        dtype, shape = self.plan[key]
        n = tensor_nbytes(dtype, shape)
        if isinstance(data, torch.Tensor):
            if data.dtype != dtype or tuple(data.shape) != tuple(shape):
                raise SafetensorsError(f"tensor {key!r} is {data.dtype} {tuple(data.shape)}, announced as {dtype} {tuple(shape)}")
            if n:
                self.file.write(data.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        else:
            if len(data) != n:
                raise SafetensorsError(f"tensor {key!r}: {len(data)} bytes given, {n} announced")
            if n:
                self.file.write(data)
        self._next += 1

    def finish(self):
        if self._next != len(self.order):
            raise SafetensorsError(f"only {self._next} of {len(self.order)} tensors were written")
        self.file.flush()


def save_file_streamed(tensors: dict, path: str, metadata: dict | None = None):
    """Small convenience (tests, tools): write a dict of tensors through the streaming writer."""
    plan = {k: (v.dtype, tuple(v.shape)) for k, v in tensors.items()}
    with open(path, "wb") as f:
        writer = SafetensorsWriter(f, plan, metadata)
        for key in writer.order:
            writer.write(key, tensors[key])
        writer.finish()
