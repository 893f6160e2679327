"""The Postgres store's tables.

    rag_meta       key -> JSON: the build's fingerprint (model, settings, dimension)
    rag_documents  each document's exact text and hash
    rag_sentences  every sentence of a document with its span; citable ones with their jieba
                   terms and their vector (pgvector)
    rag_chunks     chunks with their spans, sentence ids (within their document), terms, vector
    rag_changes    one row per changed document per change: the generation servers poll;
                   ``kind`` says what changed ('rows': the document itself, 'record': only its
                   record); entries older than ``store_changes_keep_s`` are pruned, the highest
                   pruned generation kept in rag_meta ('pruned')
    rag_records    each document's original file (bytea) and content type, the bibliographic
                   fields the file gives and those its writer set (jsonb)
    rag_feedback   readers' ratings of answers (``rag.feedback``), one JSON record each, shared
                   by every server

Sentences and chunks belong to their document (ON DELETE CASCADE): deleting or replacing a
document is one DELETE plus inserts, inside the change's transaction. The vector columns have
no approximate index: servers search their own view (rag.indexing.vectors), and the table is
read whole on load and per document on change, for which the primary key serves.

rag_records, rag_feedback and the change log are not rebuilt with the data tables (a rebuild keeps
every original, every record and every rating). A database made before they existed is upgraded in place by
``ensure_meta`` (``CREATE … IF NOT EXISTS``, ``ADD COLUMN IF NOT EXISTS``): nothing is dropped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from rag.progress import stage

SCHEMA_VERSION = 1
# Taken (transaction-scoped) by every write: changes commit one at a time, in generation order,
# so a server that has seen generation g has seen every change up to g.
WRITE_LOCK = 0x72616701  # "rag" + 1
# Held (session-scoped) by whoever checks whether the store must be built and builds it, so two
# servers started on one empty database build it once: the second waits, then loads.
BUILD_LOCK = 0x72616702
# Taken (transaction-scoped) while the tables are created or upgraded: two servers starting at
# once would otherwise race on CREATE TABLE IF NOT EXISTS (a unique violation in pg_type).
MIGRATE_LOCK = 0x72616703

_META = """
CREATE TABLE IF NOT EXISTS rag_meta (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS rag_changes (generation bigserial PRIMARY KEY, doc_id text NOT NULL,
                                        at timestamptz NOT NULL DEFAULT now());
ALTER TABLE rag_changes ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'rows';
CREATE TABLE IF NOT EXISTS rag_records (doc_id text PRIMARY KEY, content_type text, original bytea,
                                        file_fields jsonb NOT NULL DEFAULT '{}',
                                        writer_fields jsonb NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS rag_feedback (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(),
                                         record jsonb NOT NULL);
"""

_DATA = """
DROP TABLE IF EXISTS rag_chunks, rag_sentences, rag_documents;
CREATE TABLE rag_documents (doc_id text PRIMARY KEY, text text NOT NULL, sha256 text NOT NULL);
CREATE TABLE rag_sentences (
    doc_id text NOT NULL REFERENCES rag_documents ON DELETE CASCADE,
    ord int NOT NULL, start_at int NOT NULL, end_at int NOT NULL, section text NOT NULL,
    citable boolean NOT NULL, role text NOT NULL, terms text[], embedding vector({dim}),
    PRIMARY KEY (doc_id, ord));
CREATE TABLE rag_chunks (
    doc_id text NOT NULL REFERENCES rag_documents ON DELETE CASCADE,
    ord int NOT NULL, chunk_id text NOT NULL, section text NOT NULL, start_at int NOT NULL, end_at int NOT NULL,
    sentence_ids int[] NOT NULL, terms text[] NOT NULL, embedding vector({dim}) NOT NULL,
    PRIMARY KEY (doc_id, ord));
"""


def ensure_meta(conn: psycopg.Connection) -> None:
    """Create the metadata, change-log and records tables when missing, and upgrade those of an
    older schema in place (idempotent; ``conn`` in autocommit mode)."""
    if _is_current(conn):  # the usual case: no DDL, so no table lock against running servers
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        for statement in _statements(_META):
            conn.execute(statement)


def _is_current(conn: psycopg.Connection) -> bool:
    """Whether every table and column ``_META`` makes is there already."""
    return bool(conn.execute(
        "SELECT to_regclass('rag_meta') IS NOT NULL AND to_regclass('rag_records') IS NOT NULL "
        "AND to_regclass('rag_feedback') IS NOT NULL AND EXISTS "
        "(SELECT 1 FROM information_schema.columns WHERE table_name = 'rag_changes' AND column_name = 'kind' "
        "AND table_schema = current_schema())").fetchone()[0])


def recreate_data(conn: psycopg.Connection, dim: int) -> None:
    """Drop and create the document tables for vectors of ``dim`` (inside the caller's transaction)."""
    for statement in _statements(_DATA.format(dim=int(dim))):
        conn.execute(statement)


def lock_writes(conn: psycopg.Connection) -> None:
    """Serialise this transaction's writes with every other server's (released at commit)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))


@contextlib.contextmanager
def build_lock(conn: psycopg.Connection) -> Iterator[None]:
    """Hold the build lock on ``conn`` for the block (waiting while another process holds it);
    a process that dies holding it releases it with its connection."""
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (BUILD_LOCK,)).fetchone()[0]:
        with stage("waiting for another process to build the store"):  # what /health shows meanwhile
            conn.execute("SELECT pg_advisory_lock(%s)", (BUILD_LOCK,))
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (BUILD_LOCK,))


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
