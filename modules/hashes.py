"""File hashes for checkpoints and other models, cached in cache.json (A1111: modules.hashes).

Cache format (A1111's): cache.json -> {"hashes": {title: {"mtime": float, "sha256": hex}}}; titles look like
"checkpoint/<name>". The short hash users see is the first 10 hex digits.
"""
import hashlib
import os

from modules.cache import cache, dump_cache

BLOCK_SIZE = 1024 * 1024


def calculate_sha256(filename):
    hash_sha256 = hashlib.sha256()
    with open(filename, "rb") as f:
        for chunk in iter(lambda: f.read(BLOCK_SIZE), b""):
            hash_sha256.update(chunk)
    return hash_sha256.hexdigest()


def sha256_from_cache(filename, title, use_addnet_hash=False):
    """The cached sha256 of `filename`, or None if not cached or the file changed since."""
    hashes = cache("hashes-addnet") if use_addnet_hash else cache("hashes")
    if title not in hashes or not os.path.exists(filename):
        return None
    cached_sha256 = hashes[title].get("sha256", None)
    cached_mtime = hashes[title].get("mtime", 0)
    if os.path.getmtime(filename) > cached_mtime or cached_sha256 is None:
        return None
    return cached_sha256


def _no_hashing():
    from modules import shared
    return shared.cmd_opts.no_hashing


def sha256(filename, title, use_addnet_hash=False):
    """sha256 of the file (cached by title and mtime); None with --no-hashing when not already cached."""
    hashes = cache("hashes-addnet") if use_addnet_hash else cache("hashes")
    value = sha256_from_cache(filename, title, use_addnet_hash)
    if value is not None:
        return value
    if _no_hashing():
        return None
    print(f"Calculating sha256 for {filename}: ", end="", flush=True)
    if use_addnet_hash:
        with open(filename, "rb") as file:
            value = addnet_hash_safetensors(file)
    else:
        value = calculate_sha256(filename)
    print(value)
    hashes[title] = {"mtime": os.path.getmtime(filename), "sha256": value}
    dump_cache()
    return value


def addnet_hash_safetensors(b):
    """kohya's additional-networks hash: sha256 of a safetensors file's tensor data (after the header)."""
    hash_sha256 = hashlib.sha256()
    b.seek(0)
    header = b.read(8)
    n = int.from_bytes(header, "little")
    offset = n + 8
    b.seek(offset)
    for chunk in iter(lambda: b.read(BLOCK_SIZE), b""):
        hash_sha256.update(chunk)
    return hash_sha256.hexdigest()


def model_hash(filename):
    """A1111's old 8-hex "model hash": sha256 of 64 KiB at offset 1 MiB (kept for infotexts of old images)."""
    try:
        with open(filename, "rb") as file:
            m = hashlib.sha256()
            file.seek(0x100000)
            m.update(file.read(0x10000))
            return m.hexdigest()[0:8]
    except FileNotFoundError:
        return "NOFILE"
