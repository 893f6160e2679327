"""Opening, building and changing the Postgres store: ``rag.indexing.lifecycle``'s Postgres half.

Every write is one transaction under a database-wide advisory lock (``schema.lock_writes``), so
changes commit one at a time in generation order and a reader never sees half a document.
A server's view records the generation it shows (``manifest["generation"]``); ``refresh``
brings it up to the database's by re-reading only the documents changed since.
"""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg.types.json import Jsonb

from rag.config import Settings
from rag.errors import ConfigError, IndexStoreError
from rag.indexing import segments
from rag.indexing.embedder import Embedder, load_embedder
from rag.indexing.index import Index, build, fingerprint, new_segment, stale_reasons, structure_rules
from rag.indexing.pg import rows, schema
from rag.indexing.pg.connection import check_url, connect, is_postgres, translated
from rag.ingest.corpus import Document, corpus_hashes, load_corpus, load_document, read_text
from rag.progress import stage

log = logging.getLogger(__name__)
ALL = "*"  # a change-log entry meaning "every document": a full build replaced the tables
_BUILD_KEYS = ("format", "pipeline", "model_id", "settings", "userdict_sha256")


def url_of(settings: Settings) -> str:
    """The store's connection string; a value that is not a Postgres URL is a ConfigError."""
    if not is_postgres(settings.store):
        raise ConfigError("RAG_STORE must be a valid postgresql:// connection string "
                          f"(got one starting {settings.store[:13]!r})")  # never echo a password
    return check_url(settings.store)


def rebuild_reasons(settings: Settings) -> list[str]:
    """Why ``rag index`` has work to do: no build yet, a build made differently, or corpus-folder
    documents the database lacks or holds in another version (documents only in the database stay)."""
    folder = corpus_hashes(settings.corpus_dir)  # a bad corpus fails before the database is asked
    with connect(url_of(settings)) as conn:
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
    built with another model or other settings (from its own documents and the corpus folder's)."""
    url = url_of(settings)
    with connect(url) as conn:
        reasons = _build_reasons(_meta(conn), settings)
    if reasons:
        log.warning("building the Postgres store: %s", "; ".join(reasons))
        return full_build(settings, embedder or load_embedder(settings), progress)
    with stage("loading the index from Postgres"):
        return load(url)


def rebuild(settings: Settings, embedder: Embedder, progress: bool = True, force: bool = False) -> Index:
    """``rag index``: a full build when the store is empty, made differently or ``force``d;
    otherwise the corpus folder's new and changed documents, written as one change."""
    url = url_of(settings)
    with connect(url) as conn:
        reasons = _build_reasons(_meta(conn), settings)
    if reasons or force:
        return full_build(settings, embedder, progress)
    index = load(url)
    folder = corpus_hashes(settings.corpus_dir)
    changed = [d for d, sha in folder.items() if d not in index.documents or index.documents[d].sha256 != sha]
    return update(settings, embedder, index, changed) if changed else index


def full_build(settings: Settings, embedder: Embedder, progress: bool = True) -> Index:
    """Build the whole store in memory (the corpus folder's documents, plus those only the
    database has) and replace the tables with it in one transaction."""
    url = url_of(settings)
    with connect(url) as conn:
        kept = _stored_documents(conn, settings)
    with stage("building the index"):
        folder = load_corpus(settings.corpus_dir, structure_rules(settings), progress=progress)
        docs = {d.doc_id: d for d in kept} | {d.doc_id: d for d in folder}
        built = build(settings, embedder, docs=sorted(docs.values(), key=lambda d: segments.doc_key(d.doc_id)),
                      progress=progress)
    return write_all(url, built, progress)


def write_all(url: str, built: Index, progress: bool = False) -> Index:
    """Replace the tables with a build made in memory (one segment), in one transaction; returns it
    marked with the generation it now shows."""
    seg = built.layout.segments[0]
    meta = {k: built.manifest[k] for k in _BUILD_KEYS} | {"schema": schema.SCHEMA_VERSION, "dim": built.manifest["dim"],
                                                           "versions": built.manifest["versions"]}
    t = time.perf_counter()
    with stage("writing the index to Postgres"), connect(url) as conn, conn.transaction():
        schema.ensure_meta(conn)
        schema.lock_writes(conn)
        schema.recreate_data(conn, meta["dim"])
        rows.write(conn, seg, seg.documents, progress)
        conn.execute("INSERT INTO rag_meta VALUES ('build', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                     (Jsonb(meta),))
        generation = _log_changes(conn, [ALL])
    built.manifest["build_timings_s"]["write_postgres_s"] = round(time.perf_counter() - t, 3)
    built.manifest.update(generation=generation, store="postgres")
    return built


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
    docs.sort(key=lambda d: segments.doc_key(d.doc_id))
    timings = {"read_split_s": time.perf_counter() - t}
    seg = new_segment(settings, embedder, index, docs, timings)
    t = time.perf_counter()
    with connect(url_of(settings)) as conn, conn.transaction():
        schema.lock_writes(conn)
        rows.delete(conn, doc_ids)
        if seg is not None:
            rows.write(conn, seg, seg.documents)
        _log_changes(conn, doc_ids)
    timings["write_postgres_s"] = time.perf_counter() - t
    t = time.perf_counter()
    refreshed = refresh(settings, index) or index
    timings["refresh_s"] = time.perf_counter() - t
    refreshed.manifest["build_timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    return refreshed


def load(url: str) -> Index:
    """Every document in the database as a fresh view, read in one snapshot."""
    with connect(url) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        meta, generation = _meta(conn), _generation(conn)
        seg = rows.read(conn) if meta is not None else None
    if seg is None:
        raise IndexStoreError("the Postgres store holds no documents: run `rag index`")
    view = segments.assemble([seg], [tuple(seg.documents)])
    return Index.of_view(_manifest(meta, view, generation), view)


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
        changed = [r[0] for r in conn.execute("SELECT DISTINCT doc_id FROM rag_changes WHERE generation > %s", (last,))]
        whole = generation < last or ALL in changed  # rebuilt (or a new database): read it all
        seg = rows.read(conn, None if whole else changed)
        meta = _meta(conn)
    if whole:
        if seg is None:
            raise IndexStoreError("the Postgres store holds no documents: run `rag index`")
        view = segments.assemble([seg], [tuple(seg.documents)])
        return Index.of_view(_manifest(meta, view, generation), view)
    view = segments.apply(index, set(changed) & index.documents.keys(), seg)
    plan = segments.merge_plan(view["layout"])
    if plan is not None:
        view = segments.merge(Index.of_view(index.manifest, view), plan)
    return Index.of_view(_manifest(meta, view, generation), view)


def _manifest(meta: dict, view: dict, generation: int) -> dict:
    """An Index's manifest for a view of the store: the build's fingerprint, corpus, counts, generation."""
    return dict(meta) | {
        "corpus": {d: doc.sha256 for d, doc in view["documents"].items()},
        "counts": {"documents": len(view["documents"]), "sentences": len(view["sentences"]),
                   "chunks": len(view["chunks"])},
        "generation": generation, "store": "postgres", "build_timings_s": {},
    }


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
    """The stored build's fingerprint (creating the metadata tables on first use), or None."""
    schema.ensure_meta(conn)
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


def _log_changes(conn: psycopg.Connection, doc_ids: list[str]) -> int:
    """Record a change of ``doc_ids`` under a new generation (also what a listening server may
    wait on); returns that generation."""
    generation = 0
    for doc_id in doc_ids:
        generation = conn.execute("INSERT INTO rag_changes (doc_id) VALUES (%s) RETURNING generation",
                                  (doc_id,)).fetchone()[0]
    return int(generation)
