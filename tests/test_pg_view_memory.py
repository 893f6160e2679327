"""A server's view of the Postgres store stays lean: sentences and chunks as numpy columns (not
one Python object per row), sentence vectors as float16, BM25 postings and terms in narrow
integer types. A view going back to objects or float32 copies fails here (bounds are bytes per
row, measured on a small synthetic store by ``bench.view_memory``; no timing). Hash embedder."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

from bench import synth
from bench.view_memory import deep_size, parts
from rag.indexing import index as index_mod
from rag.indexing.embedder import HashEmbedder
from rag.indexing.pg import store
from rag.ingest.chunks import ChunkTable
from rag.ingest.corpus import SentenceTable
from tests.pg import pg_server, pg_url  # noqa: F401, F811 (fixtures)
from tests.test_segments import _settings


def _view(tmp_path, pg_url):
    files = dict(synth.documents(12, seed=5))
    built = index_mod.build(_settings(tmp_path / "files", files), HashEmbedder(), progress=False)
    store.write_all(pg_url, built)
    return store.load(pg_url), built


def test_pg_view_keeps_rows_as_columns_and_vectors_as_float16(tmp_path, pg_url):
    view, built = _view(tmp_path, pg_url)
    seg = view.layout.segments[0]
    assert isinstance(seg.sentences, SentenceTable) and isinstance(seg.chunks, ChunkTable)
    assert seg.sentence_vectors.dtype == np.float16
    assert view.sentence_vectors.dtype == np.float32 and view.sentence_vectors[[0, 1]].dtype == np.float32
    for postings in (seg.chunk_postings, seg.sentence_postings):
        assert postings.rows.dtype == np.int32 and postings.tf.dtype == np.uint16
    assert seg.chunk_terms.ids.ids.dtype == np.int32 and seg.sentence_terms.ids.ids.dtype == np.int32
    # Rows made on access are the rows a build made in memory has.
    d = next(iter(built.documents))
    assert view.sentences == built.sentences and view.chunks == built.chunks
    assert list(view.documents[d].sentences) == list(built.documents[d].sentences)


def test_pg_view_memory_per_row_is_bounded(tmp_path, pg_url):
    view, _ = _view(tmp_path, pg_url)
    seen: set[int] = set()
    size = {name: deep_size(objs, seen) for name, objs in parts(view).items()}
    n_sentences, n_chunks = len(view.sentences), len(view.chunks)
    assert n_sentences > 500 and n_chunks > 100
    assert size["sentence vectors"] <= n_sentences * 384 * 2 + 1024  # float16, one copy
    # A Python object per row costs 200+ bytes (a frozen dataclass with its __dict__ and strings);
    # the columns cost about 20 per sentence and 40 per chunk, plus a few fixed kilobytes.
    assert size["sentence records"] < 40 * n_sentences + 16_384
    assert size["chunk records"] < 80 * n_chunks + 16_384
    postings = [p for s in view.layout.segments for p in (s.chunk_postings, s.sentence_postings)]
    n_postings = sum(len(p.rows) for p in postings)
    assert size["BM25 postings"] < 10 * n_postings + 16 * (n_sentences + n_chunks) + 65_536


def test_pg_view_keeps_large_sentence_vectors_in_a_file(tmp_path, pg_url, monkeypatch):
    from rag.indexing import spill

    in_memory, built = _view(tmp_path, pg_url)
    monkeypatch.setattr(spill, "MIN_BYTES", 0)  # every block counts as large
    on_disk = store.load(pg_url, tmp_path / "views")
    block = on_disk.layout.segments[0].sentence_vectors
    assert isinstance(block, np.memmap) and not isinstance(in_memory.layout.segments[0].sentence_vectors, np.memmap)
    assert list((tmp_path / "views").iterdir()) == []  # no name: nothing is left behind
    # Its pages are given back once written, and reading a few rows brings only theirs back.
    assert _resident_bytes(block) == 0
    few = np.array([0, len(built.sentences) // 2])
    assert np.array_equal(on_disk.sentence_vectors[few], in_memory.sentence_vectors[few])
    assert 0 < _resident_bytes(block) <= 2 * 16 * mmap.PAGESIZE  # (a fault maps up to 16 pages around it)
    rows = np.arange(len(built.sentences))
    assert np.array_equal(on_disk.sentence_vectors[rows], in_memory.sentence_vectors[rows])


def _resident_bytes(array: np.ndarray) -> int:
    """How much of the mapping holding ``array`` is in this process's memory (/proc/self/smaps)."""
    address = array.ctypes.data
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            start, end = (int(x, 16) for x in head.split("-"))
            inside = start <= address < end
        elif inside and head == "Rss:":
            return int(line.split()[1]) * 1024
    raise AssertionError("no mapping holds the array")


def test_pg_view_corpus_text_answers_as_reading_everything(tmp_path, pg_url):
    from tests.test_corpus_text import _check

    view, _ = _view(tmp_path, pg_url)
    assert isinstance(view.layout.segments[0].sentences, SentenceTable)  # the columns path
    _check(view)


def test_the_server_that_writes_the_store_keeps_its_vectors_as_loading_servers_do(tmp_path, pg_url, monkeypatch):
    from rag.indexing import spill

    built = index_mod.build(_settings(tmp_path / "files", dict(synth.documents(12, seed=5))), HashEmbedder(), progress=False)
    wide = np.array(built.layout.segments[0].sentence_vectors)
    monkeypatch.setattr(spill, "MIN_BYTES", 0)
    written = store.write_all(pg_url, built, spill_dir=tmp_path / "views")
    block = written.layout.segments[0].sentence_vectors
    assert isinstance(block, np.memmap) and block.dtype == np.float16 and _resident_bytes(block) == 0
    assert np.array_equal(block, wide.astype(np.float16))
    rows = np.arange(len(written.sentences))
    assert np.array_equal(written.sentence_vectors[rows], store.load(pg_url).sentence_vectors[rows])
