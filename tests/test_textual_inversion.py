"""Textual-inversion embeddings: file formats, matching by name in prompts, injection, chunking, hashes, bad files."""
import os

import pytest
import safetensors.torch
import torch

from modules import hashes, sd_hijack
from modules.textual_inversion.textual_inversion import Embedding, EmbeddingDatabase

from tests.test_conditioning import TinySD

WIDTH = 64  # the tiny text encoder's width


def vectors(n, width=WIDTH, seed=0):
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def write_a1111_pt(path, vec):
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vec}, "name": "ignored", "step": 500}, path)


@pytest.fixture
def embeddings_dir(tmp_path):
    folder = tmp_path / "embeddings"
    folder.mkdir()
    return folder


def hijacked(folder):
    hijack = sd_hijack.StableDiffusionModelHijack()
    hijack.embedding_db.clear_embedding_dirs()
    hijack.embedding_db.add_embedding_dir(str(folder))
    m = TinySD()
    hijack.hijack(m)
    return m, hijack


def encode(m, text):
    with torch.no_grad():
        return m.get_learned_conditioning([text])[0]


def test_every_file_format_loads(embeddings_dir):
    write_a1111_pt(embeddings_dir / "tiptoken.pt", vectors(2))
    safetensors.torch.save_file({"emb_params": vectors(3, seed=1)}, str(embeddings_dir / "safetok.safetensors"))
    torch.save({"<concept>": vectors(1, seed=2)[0]}, embeddings_dir / "diffconcept.bin")  # diffusers: one 1-D vector
    (embeddings_dir / "sub").mkdir()
    write_a1111_pt(embeddings_dir / "sub" / "nested.pt", vectors(1, seed=3))
    (embeddings_dir / "notes.txt").write_text("not an embedding")

    _, hijack = hijacked(embeddings_dir)
    db = hijack.embedding_db
    assert sorted(db.word_embeddings) == ["diffconcept", "nested", "safetok", "tiptoken"]
    assert db.word_embeddings["tiptoken"].vectors == 2 and db.word_embeddings["tiptoken"].step == 500
    assert db.word_embeddings["safetok"].vectors == 3
    assert db.word_embeddings["diffconcept"].vectors == 1 and db.word_embeddings["diffconcept"].vec.shape == (1, WIDTH)
    assert all(e.shape == WIDTH for e in db.word_embeddings.values())
    assert db.word_embeddings["tiptoken"].filename == str(embeddings_dir / "tiptoken.pt")


def test_broken_and_mismatched_files_are_reported_and_skipped(embeddings_dir, capsys):
    (embeddings_dir / "broken.pt").write_bytes(b"this is not a torch file")
    write_a1111_pt(embeddings_dir / "goodone.pt", vectors(1))
    write_a1111_pt(embeddings_dir / "otherwidth.pt", vectors(1, width=32))
    safetensors.torch.save_file({"clip_l": vectors(2, 768), "clip_g": vectors(2, 1280)}, str(embeddings_dir / "xlemb.safetensors"))

    _, hijack = hijacked(embeddings_dir)
    db = hijack.embedding_db
    assert list(db.word_embeddings) == ["goodone"]
    assert set(db.skipped_embeddings) == {"otherwidth", "xlemb"}
    assert db.skipped_embeddings["xlemb"].shape == 768 + 1280
    assert "broken.pt" in capsys.readouterr().err


def test_embedding_is_injected_by_name(embeddings_dir):
    vec = vectors(2, seed=5)
    write_a1111_pt(embeddings_dir / "mystyle.pt", vec)
    m, hijack = hijacked(embeddings_dir)
    clip = m.cond_stage_model

    chunks, token_count = clip.tokenize_line("a mystyle cat")
    assert token_count == 4  # "a", two vectors, "cat"
    chunk = chunks[0]
    assert chunk.tokens[2:4] == [0, 0]
    assert [(fix.offset, fix.embedding.name) for fix in chunk.fixes] == [(1, "mystyle")]

    # the token embedding layer pastes the vectors after BOS + offset
    token_embedding = clip.wrapped.transformer.text_model.embeddings.token_embedding
    hijack.fixes = [chunk.fixes]
    with torch.no_grad():
        embedded = token_embedding(torch.tensor([chunk.tokens]))[0]
    assert torch.equal(embedded[2:4], vec)
    assert hijack.fixes is None  # consumed

    assert not torch.allclose(encode(m, "a mystyle cat"), encode(m, "a cat"))


def test_unknown_name_is_just_text(embeddings_dir):
    write_a1111_pt(embeddings_dir / "mystyle.pt", vectors(2))
    m, _ = hijacked(embeddings_dir)
    clip = m.cond_stage_model
    chunks, _ = clip.tokenize_line("a mystyles cat notanembedding")
    plain = clip.tokenize(["a mystyles cat notanembedding"])[0]
    assert chunks[0].fixes == []
    assert chunks[0].tokens[1:1 + len(plain)] == plain


def test_longest_name_wins_and_weights_apply(embeddings_dir):
    write_a1111_pt(embeddings_dir / "bad.pt", vectors(1, seed=1))
    write_a1111_pt(embeddings_dir / "bad-hands.pt", vectors(3, seed=2))
    m, _ = hijacked(embeddings_dir)
    chunks, _ = m.cond_stage_model.tokenize_line("(bad-hands:1.3), bad")
    assert [fix.embedding.name for fix in chunks[0].fixes] == ["bad-hands", "bad"]
    assert chunks[0].multipliers[1:4] == [1.3] * 3


def test_embedding_is_never_split_across_chunks(embeddings_dir):
    write_a1111_pt(embeddings_dir / "threevec.pt", vectors(3))
    m, _ = hijacked(embeddings_dir)
    chunks, token_count = m.cond_stage_model.tokenize_line(" ".join(["cat"] * 74) + " threevec")
    assert len(chunks) == 2
    assert chunks[0].fixes == [] and chunks[0].tokens[75] == 49407  # padded, not split
    assert [(f.offset, f.embedding.name) for f in chunks[1].fixes] == [(0, "threevec")]
    assert token_count == 75 + 3
    assert encode(m, " ".join(["cat"] * 74) + " threevec").shape == (154, WIDTH)


def test_ti_hashes_go_to_the_infotext(embeddings_dir):
    write_a1111_pt(embeddings_dir / "hashme.pt", vectors(1))
    m, hijack = hijacked(embeddings_dir)
    hijack.clear_comments()
    encode(m, "a hashme cat")
    expected = hashes.calculate_sha256(str(embeddings_dir / "hashme.pt"))[:12]
    assert hijack.extra_generation_params["TI hashes"] == f"hashme: {expected}"
    assert hijack.embedding_db.word_embeddings["hashme"].shorthash == expected


def test_reload_only_when_the_folder_changed(embeddings_dir):
    write_a1111_pt(embeddings_dir / "first.pt", vectors(1))
    m, hijack = hijacked(embeddings_dir)
    db = hijack.embedding_db
    assert list(db.word_embeddings) == ["first"]

    write_a1111_pt(embeddings_dir / "second.pt", vectors(1))
    os.utime(embeddings_dir, (1, 1))  # make the change visible even within one mtime tick
    db.load_textual_inversion_embeddings(model=m)
    assert sorted(db.word_embeddings) == ["first", "second"]

    first = db.word_embeddings["first"]
    db.load_textual_inversion_embeddings(model=m)  # nothing changed: nothing reloaded
    assert db.word_embeddings["first"] is first


def test_find_embedding_at_position_and_registry():
    class Clip:
        def tokenize(self, texts):
            return [[ord(ch) for ch in text] for text in texts]

    class Model:
        cond_stage_model = Clip()

    db = EmbeddingDatabase()
    short, long = Embedding(vectors(1), "ab"), Embedding(vectors(2), "abc")
    short.vectors, long.vectors = 1, 2
    db.register_embedding(short, Model())
    db.register_embedding(long, Model())
    tokens = [ord(ch) for ch in "xabcab"]
    assert db.find_embedding_at_position(tokens, 1) == (long, 3)
    assert db.find_embedding_at_position(tokens, 4) == (short, 2)
    assert db.find_embedding_at_position(tokens, 0) == (None, None)
