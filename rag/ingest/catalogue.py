"""The corpus's bibliographic records: each document's metadata, from its file and its writer.

``Catalogue`` reads them from a corpus folder. Reading a PDF's properties costs a file read, so
records are cached per file (its size and modification time) and per writer's record; a changed
file or record is read again. ``StoredCatalogue`` takes them from records a store keeps (the
Postgres store's, ``rag.indexing.pg.records``), the same on every server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from rag.ingest import metadata
from rag.ingest.corpus import read_text
from rag.ingest.metadata import Metadata


class _Matching:
    """Filtering documents by their records (``get``)."""

    def get(self, doc_id: str, text: str | None = None) -> Metadata:
        raise NotImplementedError

    def matching(self, doc_ids: list[str], year_from: int | None = None, year_to: int | None = None,
                 tags: list[str] | None = None) -> list[str]:
        """The documents among ``doc_ids`` whose year lies in the range and which carry every tag."""
        chosen = []
        for doc_id in doc_ids:
            meta = self.get(doc_id)
            if year_from is not None and (meta.year is None or meta.year < year_from):
                continue
            if year_to is not None and (meta.year is None or meta.year > year_to):
                continue
            if tags and not set(tags) <= set(meta.tags):
                continue
            chosen.append(doc_id)
        return chosen


class StoredCatalogue(_Matching):
    """Metadata of the documents from a store's records: ``records()`` gives the current
    ``{doc_id: {"file": fields, "writer": fields}}``."""

    def __init__(self, records: Callable[[], dict[str, dict]]):
        self.records = records

    def get(self, doc_id: str, text: str | None = None) -> Metadata:
        """The record of one document: what its writer set, over what its file says. A document
        stored without a record (written before records existed) is described by its text."""
        record = self.records().get(doc_id)
        if record is None:
            return metadata.from_file(doc_id, b"", text) if text is not None else Metadata()
        return metadata.merged(Metadata(**record["file"]), record["writer"])


class Catalogue(_Matching):
    """Metadata of the documents in one corpus folder."""

    def __init__(self, corpus_dir: Path):
        self.corpus_dir = Path(corpus_dir)
        self._cache: dict[str, tuple[tuple, Metadata]] = {}
        self._lock = threading.Lock()

    def get(self, doc_id: str, text: str | None = None) -> Metadata:
        """The record of one document: what its writer set, over what its file says (``text``, its
        canonical text when the caller holds it, saves converting the file again)."""
        path = self.corpus_dir / doc_id
        meta_path = self.corpus_dir / metadata.META_DIR / f"{doc_id}.json"
        try:
            stat = path.stat()
        except OSError:
            # Deleted while an answer from the index before the delete still cites it: the record
            # the writer set, if any; the reference falls back to the document's name.
            return metadata.merged(Metadata(), metadata.read(self.corpus_dir, doc_id))
        meta_stat = meta_path.stat() if meta_path.exists() else None
        key = (stat.st_size, stat.st_mtime_ns, meta_stat and (meta_stat.st_size, meta_stat.st_mtime_ns))
        with self._lock:
            cached = self._cache.get(doc_id)
        if cached and cached[0] == key:
            return cached[1]
        data = path.read_bytes()
        record = metadata.merged(metadata.from_file(doc_id, data, text if text is not None else read_text(path)),
                                 metadata.read(self.corpus_dir, doc_id))
        with self._lock:
            self._cache[doc_id] = (key, record)
        return record

