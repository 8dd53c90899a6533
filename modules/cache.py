"""A small JSON cache on disk (<data dir>/cache.json), keyed by subsection and title (A1111: modules.cache).

Entries remember the file's mtime; a file changed since is recomputed. Written atomically so a crash never
leaves a half-written cache behind.
"""
import json
import os
import threading

from modules import paths_internal

cache_lock = threading.Lock()
cache_data = None
cache_filename = os.environ.get("SD_WEBUI_CACHE_FILE") or os.path.join(paths_internal.data_path, "cache.json")


def _cache_path():
    return os.environ.get("SD_WEBUI_CACHE_FILE") or cache_filename


def dump_cache():
    """Write the whole cache to disk (atomically)."""
    with cache_lock:
        path = _cache_path()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf8") as file:
            json.dump(cache_data or {}, file, indent=4, ensure_ascii=False)
        os.replace(tmp, path)


def _read_cache():
    path = _cache_path()
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, "r", encoding="utf8") as file:
            data = json.load(file)
        return data if isinstance(data, dict) else {}
    except Exception:
        # a damaged cache only costs recomputation; keep the bad file aside for inspection
        os.replace(path, path + ".bad")
        print(f"[cache] {path} was not valid JSON; moved it to {path}.bad and started a new cache")
        return {}


def cache(subsection):
    """The dict for `subsection` (created if missing); changes are saved by dump_cache()."""
    global cache_data
    if cache_data is None:
        with cache_lock:
            if cache_data is None:
                cache_data = _read_cache()
    return cache_data.setdefault(subsection, {})


def cached_data_for_file(subsection, title, filename, func):
    """func()'s value for `filename`, cached under `title` until the file's mtime changes; None is not cached."""
    existing_cache = cache(subsection)
    ondisk_mtime = os.path.getmtime(filename)
    entry = existing_cache.get(title)
    if entry and ondisk_mtime > entry.get("mtime", 0):
        entry = None
    if not entry or "value" not in entry:
        value = func()
        if value is None:
            return None
        entry = {"mtime": ondisk_mtime, "value": value}
        existing_cache[title] = entry
        dump_cache()
    return entry["value"]
