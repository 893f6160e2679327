"""What the Postgres store keeps beside a document's rows, on a real Postgres (tests/pg.py) with
the hash embedder: each document's record (original file, bibliographic fields) written in the
change's transaction; a database made before records existed upgraded in place, taking over
what a server's folder held; one build when two servers open an empty database together; and
the change log pruned, a view older than the pruned entries read whole again."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from rag.errors import IndexStoreError
from rag.indexing import lifecycle
from rag.indexing.embedder import HashEmbedder
from rag.indexing.pg import records, store
from rag.ingest.catalogue import StoredCatalogue
from tests.pg import pg_server, pg_url  # noqa: F401, F811 (fixtures)
from tests.test_incremental_build import DOCS, NEW
from tests.test_pg_store import _fresh, _same_as_fresh, _store_settings


def _count(url: str, sql: str, params: tuple = ()) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def _builds(url: str) -> int:
    return _count(url, "SELECT count(*) FROM rag_changes WHERE doc_id = %s", (store.ALL,))


def test_pg_records_are_written_with_the_document_and_go_with_it(tmp_path, pg_url):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    view = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    assert set(view.manifest["records"]) == set(DOCS)  # `rag index` stored the folder's originals
    with psycopg.connect(pg_url) as conn:
        assert records.read_original(conn, "a.txt").data == (settings.corpus_dir / "a.txt").read_bytes()
    (settings.corpus_dir / "a.txt").unlink()
    view = lifecycle.update(settings, HashEmbedder(), view, ["a.txt"])
    assert "a.txt" not in view.manifest["records"]
    assert _count(pg_url, "SELECT count(*) FROM rag_records WHERE doc_id = 'a.txt'") == 0


def test_pg_records_a_failed_record_write_leaves_no_document(tmp_path, pg_url, monkeypatch):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    view = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    (settings.corpus_dir / "d.txt").write_text(NEW, encoding="utf-8")

    def fails(*args, **kwargs):
        raise IndexStoreError("record refused (simulated)")

    monkeypatch.setattr(records, "write", fails)  # after the document's rows are written
    with pytest.raises(IndexStoreError, match="simulated"):
        lifecycle.update(settings, HashEmbedder(), view, ["d.txt"])
    assert _count(pg_url, "SELECT count(*) FROM rag_documents WHERE doc_id = 'd.txt'") == 0
    assert store.refresh(settings, view) is None


@pytest.mark.parametrize("opener", ["rag serve", "rag index"])
def test_pg_records_a_database_made_before_records_is_upgraded_in_place(tmp_path, pg_url, opener):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # back to the schema before records
        conn.execute("DROP TABLE rag_records")
        conn.execute("ALTER TABLE rag_changes DROP COLUMN kind")
        before = conn.execute("SELECT doc_id, text, sha256 FROM rag_documents ORDER BY doc_id").fetchall()
        chunks = conn.execute("SELECT count(*) FROM rag_chunks").fetchone()[0]
    # What a server of that schema kept in its own folder: a PATCHed title.
    (settings.corpus_dir / ".meta").mkdir()
    (settings.corpus_dir / ".meta" / "a.txt.json").write_text(json.dumps({"title": "改过的题名"}), encoding="utf-8")
    (settings.corpus_dir / ".meta" / "b.txt.json").write_text("{not json", encoding="utf-8")  # skipped, not fatal

    assert lifecycle.rebuild_reasons(settings) == []  # `rag index` finds nothing to rebuild
    if opener == "rag serve":
        view = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    else:
        view = lifecycle.rebuild(settings, HashEmbedder(), progress=False)

    assert _builds(pg_url) == 1  # upgraded, not rebuilt
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT doc_id, text, sha256 FROM rag_documents ORDER BY doc_id").fetchall() == before
        assert conn.execute("SELECT count(*) FROM rag_chunks").fetchone()[0] == chunks
        for doc_id in DOCS:
            assert records.read_original(conn, doc_id).data == (settings.corpus_dir / doc_id).read_bytes()
    assert StoredCatalogue(lambda: view.manifest["records"]).get("a.txt").title == "改过的题名"
    assert view.manifest["records"]["b.txt"]["writer"] == {}
    other = store.load(pg_url)  # another server sees the adopted title too
    assert StoredCatalogue(lambda: other.manifest["records"]).get("a.txt").title == "改过的题名"
    _same_as_fresh(view, _fresh(tmp_path, DOCS))


def test_pg_records_two_openers_of_an_empty_database_build_it_once(tmp_path, pg_url):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    views, errors = [], []

    def open_store() -> None:
        try:
            views.append(lifecycle.ensure_index(settings, HashEmbedder(), progress=False))
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(repr(exc))

    threads = [threading.Thread(target=open_store) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(views) == 2
    assert _builds(pg_url) == 1
    for view in views:
        _same_as_fresh(view, _fresh(tmp_path, DOCS))


def test_pg_change_log_is_pruned_and_an_older_view_is_read_whole(tmp_path, pg_url, monkeypatch):
    settings = _store_settings(tmp_path, pg_url, DOCS)
    writer = lifecycle.ensure_index(settings, HashEmbedder(), progress=False)
    reader = store.load(pg_url)  # a server that will miss the log entries it needs
    files = dict(DOCS)
    files["b.txt"] = DOCS["b.txt"] + NEW
    (settings.corpus_dir / "b.txt").write_text(files["b.txt"], encoding="utf-8")
    writer = lifecycle.update(settings, HashEmbedder(), writer, ["b.txt"])
    assert _count(pg_url, "SELECT count(*) FROM rag_changes") == 2  # within the default hour: kept

    monkeypatch.setattr(store, "CHANGES_KEEP_S", 0.0)
    files["d.txt"] = NEW.replace("9例", "15例")
    (settings.corpus_dir / "d.txt").write_text(files["d.txt"], encoding="utf-8")
    writer = lifecycle.update(settings, HashEmbedder(), writer, ["d.txt"])
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT doc_id FROM rag_changes").fetchall() == [("d.txt",)]  # the newest stays
        pruned = conn.execute("SELECT value->>'through' FROM rag_meta WHERE key = 'pruned'").fetchone()[0]
    assert int(pruned) == writer.manifest["generation"] - 1

    # The entry for b.txt is gone: reading only what the log still names would miss b.txt's change.
    followed = store.refresh(settings, reader)
    assert followed.manifest["generation"] == writer.manifest["generation"]
    _same_as_fresh(followed, _fresh(tmp_path, files))
    files["a.txt"] = DOCS["a.txt"] + NEW
    (settings.corpus_dir / "a.txt").write_text(files["a.txt"], encoding="utf-8")
    lifecycle.update(settings, HashEmbedder(), writer, ["a.txt"])
    _same_as_fresh(store.refresh(settings, followed), _fresh(tmp_path, files))  # a current view: just the change
