"""The long-lived assistant behind the HTTP API: one pipeline, swapped whole when documents change.

Readers take the current pipeline once per request, so an answer always comes from one
complete index, the old or the new, never a mixture (a change makes a new Index beside the
old one, ``rag.indexing.lifecycle.update``). Writers are serialised by a lock; a failed
update puts the corpus back as it was. On the Postgres store (``RAG_STORE``) documents, their
original files and their bibliographic fields live in the database, not in the corpus folder
(``rag.indexing.pg.documents``), and a follower swaps in other servers' changes
(``rag.indexing.pg.follower``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from pathlib import Path

from rag.ingest import documents as docs_mod
from rag.indexing import lifecycle
from rag.config import Settings
from rag.errors import DocumentNotFound, DuplicateDocument, LastDocument
from rag.answer import translation
from rag.answer.references import attach_references, references
from rag.ingest import metadata
from rag.ingest.formats import page_of
from rag.ingest.catalogue import Catalogue, StoredCatalogue
from rag.pipeline import Pipeline
from rag.schema import Answer, Passage
from rag.studies import catalogue as study_catalogue
from rag.studies.records import Study

log = logging.getLogger(__name__)


class Assistant:
    """Question answering plus document management over one corpus and index folder."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self._write_lock = threading.Lock()
        if pipeline.settings.store:  # records travel with the view, so every server has the same
            self.catalogue = StoredCatalogue(lambda: self.pipeline.index.manifest.get("records", {}))
        else:
            self.catalogue = Catalogue(pipeline.settings.corpus_dir)
        self.follower = None  # set on the Postgres store: keeps the view current, knows if the database is up

    @property
    def write_lock(self) -> threading.Lock:
        """Held while the pipeline is changed (an upload, a delete, another server's change)."""
        return self._write_lock

    @property
    def unavailable(self) -> str | None:
        """Why the assistant cannot answer now (its Postgres store is unreachable), or None."""
        return self.follower.error if self.follower is not None else None

    def ask(self, question: str, history: list[dict] | None = None, top_k: int | None = None,
            documents: list[str] | None = None, filters: dict | None = None) -> Answer:
        """The pipeline's answer, from the documents in scope, its citations with reference strings."""
        pipeline = self.pipeline  # one index for the whole question
        answer = pipeline.ask(question, history, top_k, self.scope(documents, **(filters or {})))
        self.with_references(answer.citations, pipeline)
        return answer

    def search(self, claim: str, top_k: int | None = None, documents: list[str] | None = None,
               filters: dict | None = None) -> list[Passage]:
        """The pipeline's passages for a claim, from the documents in scope, with reference strings."""
        pipeline = self.pipeline
        return self.with_references(pipeline.search(claim, top_k, self.scope(documents, **(filters or {}))), pipeline)

    def with_references(self, spans: list, pipeline: Pipeline | None = None) -> list:
        """``spans`` (citations or passages) with their documents' reference strings set."""
        documents = (pipeline or self.pipeline).index.documents
        return attach_references(spans, self.catalogue, {s.doc_id: documents[s.doc_id].text for s in spans
                                                         if s.doc_id in documents})

    def scope(self, documents: list[str] | None, year_from: int | None = None, year_to: int | None = None,
              tags: list[str] | None = None) -> list[str] | None:
        """The documents a request may answer from: those named (or all), narrowed by the metadata
        filters; None when the request sets no scope at all."""
        if documents is None and year_from is None and year_to is None and not tags:
            return None
        known = list(self.pipeline.index.documents)
        named = known if documents is None else [d for d in documents if d in self.pipeline.index.documents]
        return self.catalogue.matching(named, year_from, year_to, tags)

    def studies(self, disease: str | None = None, design: str | None = None, year: int | None = None) -> list[Study]:
        """The study records of the indexed documents, filtered by disease, design trait and year."""
        return study_catalogue.matching(study_catalogue.index_studies(self.pipeline.index), disease, design, year)

    def study(self, study_id: str) -> Study:
        """One study record by id (StudyNotFound when there is none)."""
        return study_catalogue.find(study_catalogue.index_studies(self.pipeline.index), study_id)

    @classmethod
    def open(cls, settings: Settings) -> "Assistant":
        """Load the model and the index (building it when missing or stale); on the Postgres store,
        start following other servers' changes."""
        assistant = cls(Pipeline.open(settings, progress=False))
        # A server's first English question should not wait ~1.5 s for CC-CEDICT; a one-off `rag ask`
        # in Chinese never reads it, so only the server pays for this up front. (Read in a thread
        # beside the first requests instead, it held the interpreter while a burst of 32 clients
        # began: p99 0.98 s -> 2.6 s and 54 -> 50 requests/s in tools/loadtest.py.)
        translation.warm_up()
        if settings.store:
            from rag.indexing.pg.follower import Follower

            assistant.follower = Follower(assistant).start()
        return assistant

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    def documents(self, only: str | None = None) -> list[dict]:
        """The indexed documents with their sizes and records (``only``: just that one, when indexed)."""
        index = self.pipeline.index
        layout = index.layout  # rows per document, kept by every change: no pass over all rows
        sentences = dict(zip(layout.order, layout.sentence_counts.tolist()))
        chunks = dict(zip(layout.order, layout.chunk_counts.tolist()))
        listed = []
        chosen = index.documents.values() if only is None else [index.documents[only]] if only in index.documents else []
        for d in chosen:
            record = self.catalogue.get(d.doc_id, d.text)
            listed.append({"id": d.doc_id, "chars": len(d.text), "sha256": d.sha256, "sentences": sentences.get(d.doc_id, 0),
                           "chunks": chunks.get(d.doc_id, 0), "pages": page_of(d.text, len(d.text) - 1),
                           "metadata": record.model_dump(), "references": references(record, d.doc_id)})
        return listed

    def set_metadata(self, doc_id: str, fields: dict) -> dict:
        """Set bibliographic fields of a document (those given; a null one goes back to what the file
        says); returns its listing."""
        if doc_id not in self.pipeline.index.documents:
            raise DocumentNotFound(f"no document {doc_id!r}")
        with self._write_lock:
            if self.settings.store:
                self._publish(lambda p: _pg_documents().set_fields(p.settings, p.index, doc_id, fields))
            else:
                metadata.write(self.settings.corpus_dir, doc_id, metadata.read(self.settings.corpus_dir, doc_id) | fields)
        return self.documents(only=doc_id)[0]

    def add_document(self, name: str, data: bytes, fields: dict | None = None) -> dict:
        """Store a document (new or replacing one of the same name), with the bibliographic
        ``fields`` its writer gives, and index it; nothing is stored when anything is refused."""
        corpus = self.settings.corpus_dir
        path = docs_mod.safe_path(corpus, name)
        if fields:
            metadata.Metadata(**{k: v for k, v in fields.items() if v is not None})  # refused before anything is written
        digest = hashlib.sha256(docs_mod.decode_upload(name, data).encode("utf-8")).hexdigest()
        with self._write_lock:
            same = [d.doc_id for d in self.pipeline.index.documents.values() if d.sha256 == digest and d.doc_id != path.name]
            if same:  # indexing it twice would only make every answer cite both copies
                raise DuplicateDocument(f"the same text is already indexed as {same[0]!r}", existing_id=same[0])
            if self.settings.store:
                self._publish(lambda p: _pg_documents().put(p.settings, p.embedder, p.index, path.name, data, fields or None))
                return self.documents(only=path.name)[0]
            previous = path.read_bytes() if path.exists() else None
            docs_mod.write_document(corpus, name, data)
            self._rebuild_or_restore(path, previous)
            if fields:
                metadata.write(corpus, path.name, fields)
        return self.documents(only=path.name)[0]

    def delete_document(self, doc_id: str) -> None:
        """Remove a document; its passages leave both the dense and the BM25 index."""
        corpus = self.settings.corpus_dir
        path = docs_mod.safe_path(corpus, doc_id)
        with self._write_lock:
            if doc_id not in self.pipeline.index.documents and (self.settings.store or not path.exists()):
                raise DocumentNotFound(f"no document {doc_id!r}")
            if len(self.pipeline.index.documents) <= 1:
                raise LastDocument("cannot delete the only document")
            if self.settings.store:
                self._publish(lambda p: _pg_documents().remove(p.settings, p.embedder, p.index, doc_id))
                return
            previous = path.read_bytes() if path.exists() else None
            if previous is not None:
                docs_mod.remove_document(corpus, doc_id)
            self._rebuild_or_restore(path, previous)
            metadata.remove(corpus, doc_id)

    def original(self, doc_id: str) -> tuple[bytes, str] | None:
        """A document's original file and content type from the Postgres store (None when it
        holds none); on the files the original is the corpus file itself."""
        stored = _pg_documents().original(self.settings, doc_id)
        return (stored.data, stored.content_type) if stored is not None else None

    def _publish(self, change) -> None:
        """Make ``change(pipeline)``'s index live; when it raises, the live index stays as it was
        (on the Postgres store its transaction rolled back; on the files the caller restores the folder)."""
        current = self.pipeline
        self.pipeline = dataclasses.replace(current, index=change(current))
        log.info("index updated: %s", self.pipeline.index.manifest["counts"])

    def _rebuild_or_restore(self, path: Path, previous: bytes | None) -> None:
        """Index the one changed document on top of the live index (a new segment, unchanged
        documents untouched) and publish; on failure, undo the corpus change."""
        doc_id = path.relative_to(self.settings.corpus_dir).as_posix()
        try:
            self._publish(lambda p: lifecycle.update(p.settings, p.embedder, p.index, [doc_id]))
        except Exception:
            if previous is None:
                path.unlink(missing_ok=True)  # an upload's new file (a delete had none to remove)
            else:
                docs_mod.write_document(path.parent, path.name, previous)
            raise


def _pg_documents():
    """Document management on the Postgres store, imported only when ``RAG_STORE`` is set."""
    from rag.indexing.pg import documents

    return documents
