"""The long-lived assistant behind the HTTP API: one pipeline, swapped whole when documents change.

Readers take the current pipeline once per request, so an answer always comes from one
complete index, the old or the new, never a mixture (a change makes a new Index beside the
old one, ``rag.indexing.lifecycle.update``). Writers are serialised by a lock; a failed
update puts the corpus back as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

from rag.ingest import documents as docs_mod
from rag.indexing import lifecycle
from rag.config import Settings
from rag.errors import DocumentNotFound, LastDocument
from rag.pipeline import Pipeline

log = logging.getLogger(__name__)


class Assistant:
    """Question answering plus document management over one corpus and index folder."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> "Assistant":
        """Load the model and the index (building it when missing or stale)."""
        return cls(Pipeline.open(settings, progress=False))

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    def documents(self) -> list[dict]:
        """The indexed documents with their sizes."""
        index = self.pipeline.index
        layout = index.layout  # rows per document, kept by every change: no pass over all rows
        sentences = dict(zip(layout.order, layout.sentence_counts.tolist()))
        chunks = dict(zip(layout.order, layout.chunk_counts.tolist()))
        return [
            {"id": d.doc_id, "chars": len(d.text), "sha256": d.sha256,
             "sentences": sentences.get(d.doc_id, 0), "chunks": chunks.get(d.doc_id, 0)}
            for d in index.documents.values()
        ]

    def add_document(self, name: str, data: bytes) -> dict:
        """Store a .txt/.md document (new or replacing one of the same name) and index it."""
        corpus = self.settings.corpus_dir
        path = docs_mod.safe_path(corpus, name)
        docs_mod.decode_upload(name, data)
        with self._write_lock:
            previous = path.read_bytes() if path.exists() else None
            docs_mod.write_document(corpus, name, data)
            self._rebuild_or_restore(path, previous)
        return next(d for d in self.documents() if d["id"] == path.name)

    def delete_document(self, doc_id: str) -> None:
        """Remove a document; its passages leave both the dense and the BM25 index."""
        corpus = self.settings.corpus_dir
        path = docs_mod.safe_path(corpus, doc_id)
        with self._write_lock:
            if doc_id not in self.pipeline.index.documents and not path.exists():
                raise DocumentNotFound(f"no document {doc_id!r}")
            if len(self.pipeline.index.documents) <= 1:
                raise LastDocument("cannot delete the only document")
            previous = path.read_bytes()
            docs_mod.remove_document(corpus, doc_id)
            self._rebuild_or_restore(path, previous)

    def _rebuild_or_restore(self, path: Path, previous: bytes | None) -> None:
        """Index the one changed document on top of the live index (a new segment, unchanged
        documents untouched) and publish; on failure, undo the corpus change."""
        current = self.pipeline
        try:
            doc_id = path.relative_to(current.settings.corpus_dir).as_posix()
            built = lifecycle.update(current.settings, current.embedder, current.index, [doc_id])
        except Exception:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                docs_mod.write_document(path.parent, path.name, previous)
            raise
        self.pipeline = dataclasses.replace(current, index=built)
        log.info("index updated: %s", built.manifest["counts"])
