"""Textual-inversion embeddings from `embeddings/`, matched by name inside prompts (A1111's EmbeddingDatabase)."""
import os

import torch

from modules import errors, shared


class Embedding:
    def __init__(self, vec, name, step=None):
        self.vec = vec
        self.name = name
        self.step = step
        self.shape = None
        self.vectors = 0
        self.sd_checkpoint = None
        self.sd_checkpoint_name = None
        self.optimizer_state_dict = None
        self.filename = None
        self.hash = None
        self.shorthash = None

    def set_hash(self, v):
        self.hash = v
        self.shorthash = self.hash[0:12] if v else None


class DirWithTextualInversionEmbeddings:
    def __init__(self, path):
        self.path = path
        self.mtime = None

    def has_changed(self):
        if not os.path.isdir(self.path):
            return False
        return os.path.getmtime(self.path) != self.mtime

    def update(self):
        if os.path.isdir(self.path):
            self.mtime = os.path.getmtime(self.path)


def _read_embedding_file(path):
    """Tensors from an A1111 .pt (string_to_param), .safetensors (emb_params) or diffusers .bin file."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        import safetensors.torch
        data = safetensors.torch.load_file(path, device="cpu")
    elif ext in (".pt", ".bin"):
        from modules import safe
        try:
            data = safe.load(path, map_location="cpu")
        except Exception:
            data = torch.load(path, map_location="cpu", weights_only=True)
    else:
        raise ValueError(f"{path}: not an embedding file (.pt, .bin or .safetensors expected)")
    if "string_to_param" in data:
        param_dict = data["string_to_param"]
        param_dict = getattr(param_dict, "_parameters", param_dict)
        if len(param_dict) != 1:
            raise ValueError(f"{path}: embedding file has multiple terms in it")
        emb = next(iter(param_dict.items()))[1]
        vec = emb.detach().to(dtype=torch.float32)
        return vec, data.get("step"), data
    if "emb_params" in data:
        return data["emb_params"].detach().to(dtype=torch.float32), data.get("step"), data
    if isinstance(data, dict) and len(data) == 1 and torch.is_tensor(next(iter(data.values()))):
        vec = next(iter(data.values())).detach().to(dtype=torch.float32)
        return vec, None, data
    if "clip_l" in data and torch.is_tensor(data["clip_l"]):
        return {k: v.detach().to(torch.float32) for k, v in data.items() if torch.is_tensor(v)}, None, data
    raise ValueError(f"{path}: not a textual inversion embedding (no string_to_param / emb_params / single tensor)")


class EmbeddingDatabase:
    def __init__(self):
        self.ids_lookup = {}
        self.word_embeddings = {}
        self.skipped_embeddings = {}
        self.expected_shape = -1
        self.embedding_dirs = {}
        self.previously_displayed_embeddings = ()

    def add_embedding_dir(self, path):
        self.embedding_dirs[path] = DirWithTextualInversionEmbeddings(path)

    def clear_embedding_dirs(self):
        self.embedding_dirs.clear()

    def register_embedding(self, embedding, model):
        return self.register_embedding_by_name(embedding, model, embedding.name)

    def register_embedding_by_name(self, embedding, model, name):
        ids = model.cond_stage_model.tokenize([name])[0]
        first_id = ids[0]
        if first_id not in self.ids_lookup:
            self.ids_lookup[first_id] = []
        if name in self.word_embeddings:
            lookup = [x for x in self.ids_lookup[first_id] if x[1].name != name]
        else:
            lookup = self.ids_lookup[first_id]
        if embedding is not None:
            lookup += [(ids, embedding)]
        self.ids_lookup[first_id] = sorted(lookup, key=lambda x: len(x[0]), reverse=True)
        if embedding is None:
            self.word_embeddings.pop(name, None)
            if not self.ids_lookup[first_id]:
                del self.ids_lookup[first_id]
            return None
        self.word_embeddings[name] = embedding
        return embedding

    def get_expected_shape(self):
        model = shared.sd_model
        if model is None:
            return -1
        vec = model.cond_stage_model.encode_embedding_init_text(",", 1)
        return vec.shape[1]

    def load_from_file(self, path, filename, model):
        name, ext = os.path.splitext(filename)
        if ext.lower() not in (".pt", ".bin", ".safetensors"):
            return
        vec, step, data = _read_embedding_file(path)
        embedding = Embedding(vec, name, step=step)
        if torch.is_tensor(vec):
            if vec.dim() == 1:
                vec = vec.unsqueeze(0)  # a single vector (diffusers concepts)
                embedding.vec = vec
            embedding.vectors = vec.shape[0]
            embedding.shape = vec.shape[-1]
        else:
            # SDXL: one tensor per text encoder; the width is their sum (768 + 1280 = 2048), never SD1's 768
            embedding.vectors = next(iter(vec.values())).shape[0]
            embedding.shape = sum(v.shape[-1] for v in vec.values())
        embedding.filename = path
        from modules import hashes
        try:  # the file may be unreadable by now: the embedding still loads, without a hash
            embedding.set_hash(hashes.sha256(path, "textual_inversion/" + name) or "")
        except Exception:
            embedding.set_hash("")
        if self.expected_shape == -1 or self.expected_shape == embedding.shape:
            self.register_embedding(embedding, model)
        else:
            self.skipped_embeddings[name] = embedding

    def load_from_dir(self, embdir, model):
        if not os.path.isdir(embdir.path):
            return
        for root, _, fns in os.walk(embdir.path, followlinks=True):
            for fn in sorted(fns):
                fullfn = os.path.join(root, fn)
                try:
                    if os.stat(fullfn).st_size == 0:
                        continue
                    self.load_from_file(fullfn, fn, model)
                except Exception:
                    errors.report(f"Error loading embedding {fn} (skipped)", exc_info=True)

    def load_textual_inversion_embeddings(self, force_reload=False, model=None):
        model = model or shared.sd_model
        if model is None:
            return
        if not force_reload and not any(d.has_changed() for d in self.embedding_dirs.values()) and self.word_embeddings:
            return
        self.ids_lookup.clear()
        self.word_embeddings.clear()
        self.skipped_embeddings.clear()
        try:
            self.expected_shape = model.cond_stage_model.encode_embedding_init_text(",", 1).shape[1]
        except Exception:
            self.expected_shape = -1
        for embdir in self.embedding_dirs.values():
            self.load_from_dir(embdir, model)
            embdir.update()
        displayed = (tuple(self.word_embeddings.keys()), tuple(self.skipped_embeddings.keys()))
        if shared.opts.textual_inversion_print_at_load and self.previously_displayed_embeddings != displayed:
            self.previously_displayed_embeddings = displayed
            print(f"Textual inversion embeddings loaded({len(self.word_embeddings)}): {', '.join(self.word_embeddings.keys())}")

    def find_embedding_at_position(self, tokens, offset):
        """The longest embedding whose name's tokens start at `offset`, and how many tokens it spans."""
        token = tokens[offset]
        possible_matches = self.ids_lookup.get(token, None)
        if possible_matches is None:
            return None, None
        for ids, embedding in possible_matches:
            if tokens[offset:offset + len(ids)] == ids:
                return embedding, len(ids)
        return None, None


def create_embedding_from_data(data, name, filename="unknown embedding file", filepath=None):
    """An Embedding from a loaded embedding file's contents (A1111's name; a LyCORIS bundle's embeddings use it)."""
    if "string_to_param" in data:
        param_dict = data["string_to_param"]
        param_dict = getattr(param_dict, "_parameters", param_dict)
        if len(param_dict) != 1:
            raise ValueError(f"{filename}: embedding file has multiple terms in it")
        vec = next(iter(param_dict.values())).detach().to(dtype=torch.float32)
    elif isinstance(data, dict) and "clip_g" in data and "clip_l" in data:
        vec = {k: v.detach().to(torch.float32) for k, v in data.items() if torch.is_tensor(v)}
    elif isinstance(data, dict) and len(data) == 1 and torch.is_tensor(next(iter(data.values()))):
        vec = next(iter(data.values())).detach().to(dtype=torch.float32)
    else:
        raise ValueError(f"{filename}: not a textual inversion embedding")
    embedding = Embedding(vec, name, step=data.get("step") if isinstance(data, dict) else None)
    if torch.is_tensor(vec):
        embedding.vectors = vec.shape[0] if vec.dim() > 1 else 1
        embedding.shape = vec.shape[-1]
    else:
        embedding.vectors = next(iter(vec.values())).shape[0]
        embedding.shape = sum(v.shape[-1] for v in vec.values())
    embedding.filename = filepath
    return embedding
