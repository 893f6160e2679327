"""Opening, building and changing the Postgres store: ``rag.indexing.lifecycle``'s Postgres half.

Every write is one transaction under a database-wide advisory lock (``schema.lock_writes``), so
changes commit one at a time in generation order and a reader never sees half a document.
A server's view records the generation it shows (``manifest["generation"]``); ``refresh``
brings it up to the database's by re-reading only the documents changed since. The view's
manifest also carries every document's record (``manifest["records"]``, rag.indexing.pg.records),
so references are the same on every server. Change-log entries older than ``CHANGES_KEEP_S`` are
pruned; a view older than the pruned ones is read whole again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from rag.config import Settings
from rag.errors import ConfigError, CorpusError, IndexStoreError
from rag.indexing import segments
from rag.indexing.embedder import Embedder, load_embedder
from rag.indexing.index import Index, build, fingerprint, new_segment, stale_reasons, structure_rules
from rag.indexing.pg import records, rows, schema
from rag.indexing.pg.connection import check_url, connect, is_postgres, translated
from rag.ingest import metadata
from rag.ingest.corpus import Document, folder_hashes, holds_files, load_corpus, load_document, read_text
from rag.progress import stage

log = logging.getLogger(__name__)
ALL = "*"  # a change-log entry meaning "every document": a full build replaced the tables
_BUILD_KEYS = ("format", "pipeline", "chunk_vectors", "model_id", "settings", "userdict_sha256")
# Change-log entries older than this are pruned by the next write. A server whose view is older
# (down, or cut off from the database, for longer) reads the whole store again: correct, slower.
CHANGES_KEEP_S = 3600.0


def url_of(settings: Settings) -> str:
    """The store's connection string; a value that is not a Postgres URL is a ConfigError."""
    if not is_postgres(settings.store):
        raise ConfigError("RAG_STORE must be a valid postgresql:// connection string "
                          f"(got one starting {settings.store[:13]!r})")  # never echo a password
    return check_url(settings.store)


def spill_of(settings: Settings) -> Path:
    """Where a view keeps its large sentence vectors: a folder on disk in the cache."""
    return settings.cache_dir / "views"


def rebuild_reasons(settings: Settings) -> list[str]:
    """Why ``rag index`` has work to do: no build yet, a build made differently, or corpus-folder
    documents the database lacks or holds in another version (documents only in the database stay)."""
    folder = folder_hashes(settings.corpus_dir)  # a bad corpus fails before the database is asked
    with connect(url_of(settings)) as conn:
        schema.ensure_meta(conn)
        meta, stored = _meta(conn), _hashes(conn)
    reasons = _build_reasons(meta, settings)
    for doc_id, sha in sorted(folder.items()):
        if doc_id not in stored:
            reasons.append(f"document added: {doc_id}")
        elif stored[doc_id] != sha:
            reasons.append(f"document changed: {doc_id}")
    return reasons


def ensure_index(settings: Settings, embedder: Embedder | None = None, progress: bool = True) -> Index:
    """The database's documents as a view, building the store first when it is empty or was
    built with another model or other settings (from its own documents and the corpus folder's).
    Of several servers started together on such a database, one builds and the others wait for it."""
    url = url_of(settings)
    with connect(url) as conn:
        schema.ensure_meta(conn)
        with schema.build_lock(conn):
            reasons = _build_reasons(_meta(conn), settings)
            if reasons:
                log.warning("building the Postgres store: %s", "; ".join(reasons))
                return full_build(settings, embedder or load_embedder(settings), progress)
            adopt_folder_records(settings, conn)
    with stage("loading the index from Postgres"):
        return load(url, spill_of(settings))


def rebuild(settings: Settings, embedder: Embedder, progress: bool = True, force: bool = False) -> Index:
    """``rag index``: a full build when the store is empty, made differently or ``force``d;
    otherwise the corpus folder's new and changed documents, written as one change."""
    url = url_of(settings)
    with connect(url) as conn:
        schema.ensure_meta(conn)
        with schema.build_lock(conn):
            if force or _build_reasons(_meta(conn), settings):
                return full_build(settings, embedder, progress)
            adopt_folder_records(settings, conn)
            index = load(url, spill_of(settings))
            folder = folder_hashes(settings.corpus_dir)
            changed = [d for d, sha in folder.items() if d not in index.documents or index.documents[d].sha256 != sha]
            return update(settings, embedder, index, changed) if changed else index


def adopt_folder_records(settings: Settings, conn: psycopg.Connection) -> list[str]:
    """Give stored documents that have no original, or no fields set by a writer, those this
    server's corpus folder holds for them (an original only when its text is the stored one), as
    one record change; returns the documents adopted. This is how a database written before
    records existed takes over what each server kept in its own folder."""
    adopted: list[str] = []
    if not settings.corpus_dir.is_dir():  # a server started without a folder has nothing to give
        return adopted
    with conn.transaction():
        schema.lock_writes(conn)
        for doc_id, sha in records.missing_originals(conn).items():
            path = settings.corpus_dir / doc_id
            with _skipped_if_unreadable(doc_id):
                if path.is_file() and hashlib.sha256((text := read_text(path)).encode("utf-8")).hexdigest() == sha:
                    records.write(conn, doc_id, records.original_of(doc_id, path.read_bytes()), text, None)
                    adopted.append(doc_id)
        has_fields = (settings.corpus_dir / metadata.META_DIR).is_dir()
        for doc_id in records.without_writer_fields(conn) if has_fields else []:
            with _skipped_if_unreadable(doc_id):
                fields = metadata.read(settings.corpus_dir, doc_id)
                if fields:
                    records.set_writer_fields(conn, doc_id, metadata.check(fields))
                    adopted.append(doc_id)
        if adopted:
            log.warning("adopted the originals and fields of %d documents from %s", len(adopted), settings.corpus_dir)
            log_changes(conn, sorted(set(adopted)), kind="record")
    return adopted


@contextlib.contextmanager
def _skipped_if_unreadable(doc_id: str) -> Iterator[None]:
    """Skip a document whose folder file or fields cannot be read (logged): one bad file must not
    keep a server from starting, and the store is left as it was for that document."""
    try:
        yield
    except CorpusError as exc:
        log.warning("not adopting %s from the corpus folder: %s", doc_id, exc)


def full_build(settings: Settings, embedder: Embedder, progress: bool = True) -> Index:
    """Build the whole store in memory (the corpus folder's documents, plus those only the
    database has) and replace the tables with it in one transaction."""
    url = url_of(settings)
    with connect(url) as conn:
        kept = _stored_documents(conn, settings)
    with stage("building the index"):
        folder = (load_corpus(settings.corpus_dir, structure_rules(settings), progress=progress)
                  if holds_files(settings.corpus_dir) else [])
        docs = {d.doc_id: d for d in kept} | {d.doc_id: d for d in folder}
        if not docs:
            raise CorpusError(f"no documents: the database holds none and there are none in {settings.corpus_dir}")
        built = build(settings, embedder, docs=sorted(docs.values(), key=lambda d: segments.doc_key(d.doc_id)),
                      progress=progress)
    return write_all(url, built, progress, {d.doc_id: folder_upload(settings, d.doc_id) for d in folder},
                     spill_of(settings))


def folder_upload(settings: Settings, doc_id: str) -> records.Upload:
    """A corpus-folder document as an upload: its file, and the fields its ``.meta`` record sets
    (None when it has none, so those the store holds stay)."""
    original = records.original_of(doc_id, (settings.corpus_dir / doc_id).read_bytes())
    return records.Upload(original, metadata.check(metadata.read(settings.corpus_dir, doc_id)) or None)


def write_all(url: str, built: Index, progress: bool = False, uploads: dict[str, records.Upload] | None = None,
              spill_dir: Path | None = None) -> Index:
    """Replace the tables with a build made in memory (one segment), in one transaction, with the
    records of ``uploads`` (stored records of other documents stay); returns the build marked
    with the generation it now shows, its large sentence vectors in a file in ``spill_dir`` as a
    loading server keeps them."""
    seg = built.layout.segments[0]
    meta = {k: built.manifest[k] for k in _BUILD_KEYS} | {"schema": schema.SCHEMA_VERSION, "dim": built.manifest["dim"],
                                                           "versions": built.manifest["versions"]}
    t = time.perf_counter()
    with stage("writing the index to Postgres"), connect(url) as conn, conn.transaction():
        schema.ensure_meta(conn)
        schema.lock_writes(conn)
        schema.recreate_data(conn, meta["dim"])
        rows.write(conn, seg, seg.documents, progress)
        _write_records(conn, seg.documents, uploads or {})
        conn.execute("INSERT INTO rag_meta VALUES ('build', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                     (Jsonb(meta),))
        generation = log_changes(conn, [ALL])
        recs = records.read(conn)
    built.manifest["build_timings_s"]["write_postgres_s"] = round(time.perf_counter() - t, 3)
    built.manifest.update(generation=generation, store="postgres", records=recs)
    return rows.narrowed(built, spill_dir)


def update(settings: Settings, embedder: Embedder, index: Index, doc_ids: list[str]) -> Index:
    """Write the corpus files ``doc_ids`` as they are now (added, replaced, or deleted when the
    file is gone) as one transaction, then return ``index`` brought up to the database
    (this change and any other server's since ``index``'s generation)."""
    t = time.perf_counter()
    rules = structure_rules(settings)
    docs: list[Document] = []
    for doc_id in doc_ids:
        path = settings.corpus_dir / doc_id
        if path.is_file():
            docs.append(load_document(doc_id, read_text(path), rules))
    uploads = {d.doc_id: folder_upload(settings, d.doc_id) for d in docs}
    return change(settings, embedder, index, doc_ids, docs, uploads, {"read_split_s": time.perf_counter() - t})


def change(settings: Settings, embedder: Embedder, index: Index, doc_ids: list[str], docs: list[Document],
           uploads: dict[str, records.Upload], timings: dict | None = None) -> Index:
    """Replace the documents ``doc_ids`` with ``docs`` (those of them not in ``docs`` are deleted),
    rows and records (``uploads``, by document) in one transaction; returns ``index`` brought up
    to the database (this change and any other server's since ``index``'s generation)."""
    timings = {} if timings is None else timings
    docs = sorted(docs, key=lambda d: segments.doc_key(d.doc_id))
    seg = new_segment(settings, embedder, index, docs, timings)
    t = time.perf_counter()
    with connect(url_of(settings)) as conn, conn.transaction():
        schema.lock_writes(conn)
        rows.delete(conn, doc_ids)
        records.delete(conn, set(doc_ids) - {d.doc_id for d in docs})
        if seg is not None:
            rows.write(conn, seg, seg.documents)
            _write_records(conn, seg.documents, uploads)
        log_changes(conn, doc_ids)
    timings["write_postgres_s"] = time.perf_counter() - t
    t = time.perf_counter()
    refreshed = refresh(settings, index) or index
    timings["refresh_s"] = time.perf_counter() - t
    refreshed.manifest["build_timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    return refreshed


def load(url: str, spill_dir: Path | None = None) -> Index:
    """Every document in the database as a fresh view, read in one snapshot (large sentence
    vectors kept in a file in ``spill_dir``, see ``rows.read``)."""
    with connect(url) as conn:
        schema.ensure_meta(conn)
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            meta, generation = _meta(conn), _generation(conn)
            seg = rows.read(conn, spill_dir=spill_dir) if meta is not None else None
            recs = records.read(conn)
    return _whole_view(meta, seg, generation, recs)


def refresh(settings: Settings, index: Index, conn: psycopg.Connection | None = None) -> Index | None:
    """``index`` with every document changed in the database since its generation re-read and
    spliced in (or dropped); None when nothing changed. ``conn``: a connection to reuse."""
    if conn is None:
        with connect(url_of(settings)) as own:
            return refresh(settings, index, own)
    last = int(index.manifest.get("generation", 0))
    with translated(), conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # the log and the rows of one moment
        generation = _generation(conn)
        if generation == last:
            return None
        logged = conn.execute("SELECT DISTINCT doc_id, kind FROM rag_changes WHERE generation > %s", (last,)).fetchall()
        changed = sorted({d for d, kind in logged if kind == "rows"})  # documents whose rows must be read again
        described = sorted({d for d, _ in logged})  # and those whose record must
        # Rebuilt, a new database, or entries this view needs pruned: read it all.
        whole = generation < last or ALL in changed or last < _pruned_through(conn)
        seg = rows.read(conn, None if whole else changed, spill_of(settings)) if whole or changed else None
        recs = records.read(conn, None if whole else described)
        meta = _meta(conn)
    if whole:
        return _whole_view(meta, seg, generation, recs)
    recs = {d: r for d, r in index.manifest.get("records", {}).items() if d not in described} | recs
    if not changed:  # only records changed: the same rows under a new manifest
        return dataclasses.replace(index, manifest=index.manifest | {"generation": generation, "records": recs})
    view = segments.apply(index, set(changed) & index.documents.keys(), seg)
    plan = segments.merge_plan(view["layout"])
    if plan is not None:
        view = segments.merge(Index.of_view(index.manifest, view), plan, spill_of(settings))
    return Index.of_view(_manifest(meta, view, generation, recs), view)


def _whole_view(meta: dict | None, seg: segments.Segment | None, generation: int, recs: dict) -> Index:
    """A view of one segment holding every stored document."""
    if meta is None or seg is None:
        raise IndexStoreError("the Postgres store holds no documents: run `rag index`")
    view = segments.assemble([seg], [tuple(seg.documents)])
    return Index.of_view(_manifest(meta, view, generation, recs), view)


def _manifest(meta: dict, view: dict, generation: int, recs: dict) -> dict:
    """An Index's manifest for a view of the store: the build's fingerprint, corpus, counts,
    generation, and the documents' records."""
    return dict(meta) | {
        "corpus": {d: doc.sha256 for d, doc in view["documents"].items()},
        "counts": {"documents": len(view["documents"]), "sentences": len(view["sentences"]),
                   "chunks": len(view["chunks"])},
        "generation": generation, "store": "postgres", "build_timings_s": {}, "records": recs,
    }


def _write_records(conn: psycopg.Connection, documents: dict[str, Document], uploads: dict[str, records.Upload]) -> None:
    """The records of those ``documents`` that came with an upload (the others keep theirs)."""
    for doc_id, upload in uploads.items():
        records.write(conn, doc_id, upload.original, documents[doc_id].text, upload.fields)


def _build_reasons(meta: dict | None, settings: Settings) -> list[str]:
    """Why the stored build cannot serve these settings (empty when it can)."""
    if meta is None:
        return ["no index yet"]
    expected = fingerprint(settings, {})
    reasons = stale_reasons(meta | {"corpus": {}}, expected)
    if meta.get("schema") != schema.SCHEMA_VERSION:
        reasons.append(f"schema changed ({meta.get('schema')!r} -> {schema.SCHEMA_VERSION!r})")
    return reasons


def _meta(conn: psycopg.Connection) -> dict | None:
    """The stored build's fingerprint, or None (call ``schema.ensure_meta`` first)."""
    row = conn.execute("SELECT value FROM rag_meta WHERE key = 'build'").fetchone()
    return row[0] if row else None


def _hashes(conn: psycopg.Connection) -> dict[str, str]:
    """Each stored document's hash (empty when there is no build)."""
    if conn.execute("SELECT to_regclass('rag_documents')").fetchone()[0] is None:
        return {}
    return dict(conn.execute("SELECT doc_id, sha256 FROM rag_documents").fetchall())


def _stored_documents(conn: psycopg.Connection, settings: Settings) -> list[Document]:
    """The stored documents, split again under ``settings`` (a rebuild keeps what only the database has)."""
    if conn.execute("SELECT to_regclass('rag_documents')").fetchone()[0] is None:
        return []
    rules = structure_rules(settings)
    return [load_document(d, text, rules) for d, text in conn.execute("SELECT doc_id, text FROM rag_documents")]


def _generation(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(generation), 0) FROM rag_changes").fetchone()[0])


def _pruned_through(conn: psycopg.Connection) -> int:
    """The highest generation pruned from the change log (0 when none was)."""
    row = conn.execute("SELECT value->>'through' FROM rag_meta WHERE key = 'pruned'").fetchone()
    return int(row[0]) if row else 0


def log_changes(conn: psycopg.Connection, doc_ids: list[str], kind: str = "rows") -> int:
    """Record a change of ``doc_ids`` (``kind`` 'rows', or 'record' when only their records changed)
    under a new generation, and prune entries older than ``CHANGES_KEEP_S`` (never the newest, whose
    generation is the store's); returns the new generation. Call under ``schema.lock_writes``."""
    generation = 0
    for doc_id in doc_ids:
        generation = conn.execute("INSERT INTO rag_changes (doc_id, kind) VALUES (%s, %s) RETURNING generation",
                                  (doc_id, kind)).fetchone()[0]
    pruned = conn.execute(
        "WITH gone AS (DELETE FROM rag_changes WHERE generation < %s AND at < now() - make_interval(secs => %s) "
        "RETURNING generation) SELECT max(generation) FROM gone", (generation, CHANGES_KEEP_S)).fetchone()[0]
    if pruned is not None:
        conn.execute("INSERT INTO rag_meta VALUES ('pruned', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                     (Jsonb({"through": int(pruned)}),))
    return int(generation)
