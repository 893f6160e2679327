"""The Postgres store (rag.indexing.pg) on a real Postgres with pgvector (tests/pg.py): a view
loaded from it is the index a file build of the same corpus gives, and stays so through adds,
replaces and deletes, on the writing server and on another that only refreshes; a change is
one transaction (a failed or killed writer leaves the previous document whole, readers never
see half of one); bad connection strings are one-line errors. Hash embedder, no model load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ConfigError, IndexStoreError, StoreUnavailable
from rag.indexing import index as index_mod
from rag.indexing import lifecycle, vectors
from rag.indexing.embedder import HashEmbedder
from rag.indexing.pg import rows, store
from rag.ingest.chunks import chunk_documents
from rag.ingest.corpus import load_document
from tests.pg import pg_server, pg_url  # noqa: F401, F811 (fixtures)
from tests.test_incremental_build import DOCS, NEW, QUESTIONS, _half_rows, _same_index
from tests.test_segments import MORE, _settings

ROOT = Path(__file__).resolve().parents[1]


def _store_settings(tmp_path: Path, url: str, files: dict[str, str], name: str = "live"):
    return _settings(tmp_path / name, files).model_copy(update={"store": url})


def _fresh(tmp_path: Path, files: dict[str, str]) -> index_mod.Index:
    return index_mod.build(_settings(tmp_path / "fresh", files), HashEmbedder(), progress=False)


def _same_as_fresh(view: index_mod.Index, fresh: index_mod.Index) -> None:
    """Same passages, vectors, BM25 and answers (``_same_index``), and the same dense hits."""
    _same_index(view, fresh)
    # A chunk vector is the mean of its sentences' vectors; a view keeps those as float16, so a
    # chunk re-derived after a change from kept sentences may differ in the fifth decimal.
    tolerance = 1e-3 if _half_rows(view).any() else 1e-6
    for question in QUESTIONS:
        got, want = (vectors.search(x.chunk_vectors, HashEmbedder().encode([question], True)[0], 50) for x in (view, fresh))
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], atol=tolerance)


def test_pg_store_view_equals_a_file_build(tmp_path, pg_url):
    settings = _store_settings(tmp_path, pg_url, DOCS | {"f/g.txt": MORE["f/g.txt"]})
    assert lifecycle.rebuild_reasons(settings)[0] == "no index yet"
    built = lifecycle.rebuild(settings, HashEmbedder(), progress=False)
    fresh = _fresh(tmp_path, DOCS | {"f/g.txt": MORE["f/g.txt"]})
    _same_as_fresh(built, fresh)
    _same_as_fresh(store.load(pg_url), fresh)  # what another server loads
    assert lifecycle.rebuild_reasons(settings) == []


@pytest.mark.parametrize("change", ["add", "replace", "delete", "add-first", "add-nested"])
def test_pg_store_one_change_equals_a_fresh_build_on_both_servers(tmp_path, pg_url, change):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    writer = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    reader = store.load(pg_url)  # a second server, loaded before the change
    files = dict(DOCS)
    if change == "delete":
        del files["a.txt"]
        (settings.corpus_dir / "a.txt").unlink()
        doc_id = "a.txt"
    else:
        doc_id = {"add": "d.txt", "add-first": "0.txt", "add-nested": "f/g.txt", "replace": "b.txt"}[change]
        text = {"d.txt": NEW, "b.txt": DOCS["b.txt"].replace("9例", "12例") + NEW}.get(doc_id) or MORE[doc_id]
        files[doc_id] = text
        (settings.corpus_dir / doc_id).parent.mkdir(parents=True, exist_ok=True)
        (settings.corpus_dir / doc_id).write_text(text, encoding="utf-8")
    changed = lifecycle.update(settings, HashEmbedder(), writer, [doc_id])
    assert changed.manifest["generation"] > writer.manifest["generation"]
    followed = store.refresh(settings, reader)
    fresh = _fresh(tmp_path, files)
    for view in (changed, followed, store.load(pg_url)):
        _same_as_fresh(view, fresh)
    assert store.refresh(settings, followed) is None  # nothing new since


def test_pg_store_many_changes_with_merges_equal_a_fresh_build(tmp_path, pg_url, monkeypatch):
    from rag.indexing import segments

    monkeypatch.setattr(segments, "MAX_SEGMENTS", 2)  # merges happen on the way
    settings = _store_settings(tmp_path, pg_url, DOCS)
    view = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    reader = store.load(pg_url)
    files = dict(DOCS)
    for name, text in MORE.items():
        (settings.corpus_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (settings.corpus_dir / name).write_text(text, encoding="utf-8")
        files[name] = text
        view = lifecycle.update(settings, HashEmbedder(), view, [name])
    (settings.corpus_dir / "b.txt").unlink()
    del files["b.txt"]
    view = lifecycle.update(settings, HashEmbedder(), view, ["b.txt"])
    fresh = _fresh(tmp_path, files)
    _same_as_fresh(view, fresh)
    _same_as_fresh(store.refresh(settings, reader), fresh)  # four changes caught up at once


def test_pg_store_failed_change_leaves_the_previous_document(tmp_path, pg_url, monkeypatch):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    view = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    (settings.corpus_dir / "b.txt").write_text(DOCS["b.txt"] + NEW, encoding="utf-8")
    real_write = rows.write

    def dies_after_writing(conn, seg, doc_ids, progress=False):
        real_write(conn, seg, doc_ids, progress)  # the old rows are deleted and the new ones in: then it fails
        raise IndexStoreError("disk full (simulated)")

    monkeypatch.setattr(rows, "write", dies_after_writing)
    with pytest.raises(IndexStoreError, match="simulated"):
        lifecycle.update(settings, HashEmbedder(), view, ["b.txt"])
    assert store.refresh(settings, view) is None  # no generation was committed
    _same_as_fresh(store.load(pg_url), _fresh(tmp_path, DOCS))


_KILLED_WRITER = """
import os, signal, sys
from rag.indexing.embedder import HashEmbedder
from rag.indexing import lifecycle
from rag.indexing.pg import rows, store
from rag.config import Settings
settings = Settings(corpus_dir=sys.argv[1], store=sys.argv[2], embedding_model="hash-test", cache_dir=sys.argv[3])
view = store.load(settings.store)
real_write = rows.write
def killed(conn, seg, doc_ids, progress=False):
    real_write(conn, seg, doc_ids, progress)
    os.kill(os.getpid(), signal.SIGKILL)  # the server dies mid-upload: rows sent, nothing committed
rows.write = killed
lifecycle.update(settings, HashEmbedder(), view, ["b.txt"])
"""


def test_pg_store_writer_killed_mid_change_leaves_no_partial_document(tmp_path, pg_url):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    view = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    (settings.corpus_dir / "b.txt").write_text(DOCS["b.txt"] + NEW, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(settings.corpus_dir), pg_url,
                           str(settings.cache_dir)], cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert store.refresh(settings, view) is None
    _same_as_fresh(store.load(pg_url), _fresh(tmp_path, DOCS))


def test_pg_store_concurrent_readers_never_see_half_a_document(tmp_path, pg_url):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    view = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    versions = [DOCS["b.txt"], DOCS["b.txt"] + NEW + MORE["e.txt"]]
    rules = index_mod.structure_rules(settings)
    expected = {}
    for text in versions:  # what a whole document of either version indexes
        sentences, chunks = chunk_documents([load_document("b.txt", text, rules)], 300, 1)
        expected[len(text)] = (len(sentences), len(chunks))
    seen, problems, stop = set(), [], threading.Event()

    def read() -> None:
        mine = store.load(pg_url)
        while not stop.is_set():
            try:
                mine = store.refresh(settings, mine) or mine
            except Exception as exc:  # noqa: BLE001 (reported below)
                problems.append(repr(exc))
                return
            doc = mine.documents["b.txt"]
            n_sent = sum(1 for s in mine.sentences if s.doc_id == "b.txt")
            n_chunks = sum(1 for c in mine.chunks if c.doc_id == "b.txt")
            seen.add(len(doc.text))
            if (n_sent, n_chunks) != expected[len(doc.text)] or len(mine.sentence_vectors) != len(mine.sentences):
                problems.append(f"half a document: {len(doc.text)} chars with {n_sent} sentences, {n_chunks} chunks")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(12):
        (settings.corpus_dir / "b.txt").write_text(versions[(i + 1) % 2], encoding="utf-8")
        view = lifecycle.update(settings, HashEmbedder(), view, ["b.txt"])
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert problems == []
    assert seen == set(expected)  # the readers saw both versions, each whole


def test_pg_store_bad_settings_are_one_line_errors(tmp_path):
    settings = _settings(tmp_path, DOCS)
    with pytest.raises(ConfigError, match="valid postgresql://"):
        store.url_of(settings.model_copy(update={"store": "mysql://u@h/db"}))
    with pytest.raises(ConfigError):
        store.url_of(settings.model_copy(update={"store": "postgresql://[bad"}))
    with pytest.raises(StoreUnavailable, match="cannot reach the Postgres store"):
        lifecycle.rebuild_reasons(settings.model_copy(update={"store": "postgresql://u@/db?host=/nonexistent"}))


def test_pg_store_cli_index_with_a_bad_store_exits_with_one_line(tmp_path):
    settings = _settings(tmp_path, DOCS)
    urls = ["postgresql://[bad", "postgresql://u:secret@/db?host=/nonexistent", "mysql://x/y"]
    procs = []
    for url in urls:  # started together: each pays the CLI's imports
        env = os.environ | {"RAG_STORE": url, "RAG_CORPUS_DIR": str(settings.corpus_dir), "PYTHONPATH": str(ROOT)}
        env.pop("RAG_DEBUG", None)
        procs.append(subprocess.Popen([sys.executable, "-m", "rag.cli", "index"], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for url, proc in zip(urls, procs):
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, (url, stderr)
        lines = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in stderr and "secret" not in stderr, (url, stderr)


def test_pg_store_a_full_rebuild_reloads_every_server(tmp_path, pg_url):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    reader = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    (settings.corpus_dir / "d.txt").write_text(NEW, encoding="utf-8")
    # A settings change the stored build cannot serve: `rag index` rebuilds every table.
    rebuilt = settings.model_copy(update={"chunk_max_chars": 120})
    assert any("chunk_max_chars" in r for r in lifecycle.rebuild_reasons(rebuilt))
    lifecycle.rebuild(rebuilt, HashEmbedder(), progress=False)
    followed = store.refresh(rebuilt, reader)  # the change log says "everything": reloaded whole
    fresh = index_mod.build(_settings(tmp_path / "fresh", DOCS | {"d.txt": NEW}).model_copy(
        update={"chunk_max_chars": 120}), HashEmbedder(), progress=False)
    _same_as_fresh(followed, fresh)
