"""Document management on the Postgres store, for the API: upload, delete, set a document's
bibliographic fields, read its original. Nothing goes to the server's own corpus folder: the
document's rows and its record (original file, fields) are written in one transaction, so every
server serves the same original and the same reference strings."""

from __future__ import annotations

from rag.config import Settings
from rag.errors import DocumentNotFound
from rag.indexing.embedder import Embedder
from rag.indexing.index import Index, structure_rules
from rag.indexing.pg import records, schema, store
from rag.indexing.pg.connection import connect
from rag.ingest import metadata
from rag.ingest.corpus import load_document
from rag.ingest.documents import decode_upload


def put(settings: Settings, embedder: Embedder, index: Index, name: str, data: bytes, fields: dict | None) -> Index:
    """Add or replace the document ``name`` from its file ``data`` with the writer's ``fields``
    (None keeps those set before); returns ``index`` brought up to the database."""
    document = load_document(name, decode_upload(name, data), structure_rules(settings))
    upload = records.Upload(records.original_of(name, data), None if fields is None else metadata.check(fields))
    return store.change(settings, embedder, index, [name], [document], {name: upload})


def remove(settings: Settings, embedder: Embedder, index: Index, doc_id: str) -> Index:
    """Delete a document with its rows and its record; returns ``index`` brought up to the database."""
    return store.change(settings, embedder, index, [doc_id], [], {})


def set_fields(settings: Settings, index: Index, doc_id: str, fields: dict) -> Index:
    """Set some of a document's writer fields (a null one goes back to what the file says), logged
    as a record change other servers pick up; returns ``index`` brought up to the database."""
    with connect(store.url_of(settings)) as conn, conn.transaction():
        schema.lock_writes(conn)
        if conn.execute("SELECT 1 FROM rag_documents WHERE doc_id = %s", (doc_id,)).fetchone() is None:
            raise DocumentNotFound(f"no document {doc_id!r}")  # deleted by another server meanwhile
        records.set_writer_fields(conn, doc_id, metadata.check(records.writer_fields(conn, doc_id) | fields))
        store.log_changes(conn, [doc_id], kind="record")
    return store.refresh(settings, index) or index


def original(settings: Settings, doc_id: str) -> records.Original | None:
    """A document's original file as stored, or None when the store has none."""
    with connect(store.url_of(settings)) as conn:
        return records.read_original(conn, doc_id)
