"""The Postgres store's tables.

    rag_meta       key -> JSON: the build's fingerprint (model, settings, dimension)
    rag_documents  each document's exact text and hash
    rag_sentences  every sentence of a document with its span; citable ones with their jieba
                   terms and their vector (pgvector)
    rag_chunks     chunks with their spans, sentence ids (within their document), terms, vector
    rag_changes    one row per changed document per change: the generation servers poll

Sentences and chunks belong to their document (ON DELETE CASCADE): deleting or replacing a
document is one DELETE plus inserts, inside the change's transaction. The vector columns have
no approximate index: servers search their own view (rag.indexing.vectors), and the table is
read whole on load and per document on change, for which the primary key serves.
"""

from __future__ import annotations

import psycopg

SCHEMA_VERSION = 1
# Taken (transaction-scoped) by every write: changes commit one at a time, in generation order,
# so a server that has seen generation g has seen every change up to g.
WRITE_LOCK = 0x72616701  # "rag" + 1

_META = """
CREATE TABLE IF NOT EXISTS rag_meta (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS rag_changes (generation bigserial PRIMARY KEY, doc_id text NOT NULL,
                                        at timestamptz NOT NULL DEFAULT now());
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
    """Create the metadata and change-log tables when missing (idempotent)."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for statement in _statements(_META):
        conn.execute(statement)


def recreate_data(conn: psycopg.Connection, dim: int) -> None:
    """Drop and create the document tables for vectors of ``dim`` (inside the caller's transaction)."""
    for statement in _statements(_DATA.format(dim=int(dim))):
        conn.execute(statement)


def lock_writes(conn: psycopg.Connection) -> None:
    """Serialise this transaction's writes with every other server's (released at commit)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
