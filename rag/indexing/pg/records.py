"""Each document's record in the Postgres store (table ``rag_records``): its original file and
content type, the bibliographic fields that file gives and those its writer set.

What a file gives (a PDF's title and authors, a first heading, a DOI) is worked out once, by the
server that receives the file, and stored as ``file_fields``: every other server then has the
whole record from two small JSON values, without reading the original back.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from rag.ingest import metadata


@dataclass(frozen=True)
class Original:
    """A document's file as it was uploaded (or found in the corpus folder)."""

    data: bytes
    content_type: str


@dataclass(frozen=True)
class Upload:
    """A document's file as it comes in, and the fields its writer gives (None: keep those set before)."""

    original: Original
    fields: dict | None = None


def original_of(doc_id: str, data: bytes) -> Original:
    """``data`` with the content type its name implies (``a.pdf`` -> application/pdf)."""
    guessed, _ = mimetypes.guess_type(doc_id)
    if guessed is None and doc_id.lower().endswith(".md"):
        guessed = "text/markdown"
    if guessed is not None and guessed.startswith("text/"):
        guessed += "; charset=utf-8"  # text documents are UTF-8 (rag.ingest.documents.decode_upload)
    return Original(data, guessed or "application/octet-stream")


def write(conn: psycopg.Connection, doc_id: str, original: Original, text: str, fields: dict | None) -> None:
    """Store a document's original and what it says about itself, inside the caller's transaction;
    ``fields``, when given, replace what its writer set (else those set before stay)."""
    found = metadata.from_file(doc_id, original.data, text).model_dump(exclude_defaults=True)
    conn.execute(
        "INSERT INTO rag_records (doc_id, content_type, original, file_fields, writer_fields) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (doc_id) DO UPDATE SET content_type = EXCLUDED.content_type, "
        "original = EXCLUDED.original, file_fields = EXCLUDED.file_fields, writer_fields = "
        "CASE WHEN %s THEN EXCLUDED.writer_fields ELSE rag_records.writer_fields END",
        (doc_id, original.content_type, original.data, Jsonb(found), Jsonb(fields or {}), fields is not None))


def set_writer_fields(conn: psycopg.Connection, doc_id: str, fields: dict) -> None:
    """Replace the fields a document's writer set, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO rag_records (doc_id, writer_fields) VALUES (%s, %s) "
        "ON CONFLICT (doc_id) DO UPDATE SET writer_fields = EXCLUDED.writer_fields", (doc_id, Jsonb(fields)))


def writer_fields(conn: psycopg.Connection, doc_id: str) -> dict:
    """The fields a document's writer set (empty when none)."""
    row = conn.execute("SELECT writer_fields FROM rag_records WHERE doc_id = %s", (doc_id,)).fetchone()
    return row[0] if row else {}


def delete(conn: psycopg.Connection, doc_ids: Iterable[str]) -> None:
    """Forget deleted documents' records, inside the caller's transaction."""
    conn.execute("DELETE FROM rag_records WHERE doc_id = ANY(%s)", (list(doc_ids),))


def read(conn: psycopg.Connection, doc_ids: list[str] | None = None) -> dict[str, dict]:
    """``{doc_id: {"file": fields, "writer": fields}}`` of the documents ``doc_ids`` (all when
    None) that have a record; originals are not read."""
    where, params = ("", ()) if doc_ids is None else (" WHERE doc_id = ANY(%s)", (list(doc_ids),))
    rows = conn.execute(f"SELECT doc_id, file_fields, writer_fields FROM rag_records{where}", params)
    return {doc_id: {"file": found, "writer": writer} for doc_id, found, writer in rows}


def read_original(conn: psycopg.Connection, doc_id: str) -> Original | None:
    """A document's stored original, or None when the store has none for it."""
    row = conn.execute("SELECT original, content_type FROM rag_records WHERE doc_id = %s AND original IS NOT NULL",
                       (doc_id,)).fetchone()
    return Original(bytes(row[0]), row[1]) if row else None


def missing_originals(conn: psycopg.Connection) -> dict[str, str]:
    """Stored documents without an original (written before records existed): ``{doc_id: sha256}``."""
    return dict(conn.execute("SELECT d.doc_id, d.sha256 FROM rag_documents d LEFT JOIN rag_records r USING (doc_id) "
                             "WHERE r.original IS NULL").fetchall())


def without_writer_fields(conn: psycopg.Connection) -> list[str]:
    """Stored documents whose writer set no fields in the store."""
    return [r[0] for r in conn.execute("SELECT d.doc_id FROM rag_documents d LEFT JOIN rag_records r USING (doc_id) "
                                       "WHERE r.writer_fields IS NULL OR r.writer_fields = '{}'")]
