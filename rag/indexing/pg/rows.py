"""Documents to rows and back: a segment's documents written into the tables (binary COPY),
and documents read from them into a segment (``rag.indexing.segments.Segment``) that splices
into a server's view exactly as a segment built in memory does."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import psycopg
from psycopg.adapt import Loader
from psycopg.pq import Format

from rag.errors import IndexStoreError
from rag.indexing import lexical, segments, spill, vectors
from rag.indexing.index import Index
from rag.ingest.chunks import ChunkTable
from rag.ingest.corpus import Document, SentenceTable
from rag.progress import tracked

_SENTENCE_COLUMNS = "doc_id, ord, start_at, end_at, section, citable, role, terms, embedding"
_CHUNK_COLUMNS = "doc_id, ord, chunk_id, section, start_at, end_at, sentence_ids, terms, embedding"


def write(conn: psycopg.Connection, seg: segments.Segment, doc_ids: Iterable[str], progress: bool = False) -> None:
    """Insert ``doc_ids`` of ``seg`` (none of them may be in the tables) with their sentences,
    chunks, terms and vectors, inside the caller's transaction."""
    doc_ids = list(doc_ids)
    chunk_terms, sentence_terms = _TermLists(seg.chunk_terms), _TermLists(seg.sentence_terms)
    chunk_vectors = seg.chunk_index.reconstruct_n(0, seg.n_chunks) if seg.n_chunks else None
    cur = conn.cursor()
    with cur.copy("COPY rag_documents (doc_id, text, sha256) FROM STDIN") as copy:
        for doc_id in doc_ids:
            d = seg.documents[doc_id]
            copy.write_row((d.doc_id, d.text, d.sha256))
    _write_rows(cur, seg, doc_ids, chunk_vectors, chunk_terms, sentence_terms, progress)


def _write_rows(cur, seg, doc_ids, chunk_vectors, chunk_terms, sentence_terms, progress) -> None:
    """The sentence rows of every document, then the chunk rows (one COPY each)."""
    with cur.copy(f"COPY rag_sentences ({_SENTENCE_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["text", "int4", "int4", "int4", "text", "bool", "text", "text[]", "vector"])
        for doc_id in tracked(doc_ids, len(doc_ids), "writing documents to Postgres", progress):
            c0, c1, s0, s1 = seg.spans[doc_id]
            row = s0  # citable sentences are the segment's rows, in document order
            for ord_, s in enumerate(seg.documents[doc_id].sentences):
                if s.citable:
                    copy.write_row((doc_id, ord_, s.start, s.end, s.section, True, s.role, sentence_terms[row],
                                    seg.sentence_vectors[row]))
                    row += 1
                else:
                    copy.write_row((doc_id, ord_, s.start, s.end, s.section, False, s.role, None, None))
            if row != s1:
                raise IndexStoreError(f"{doc_id}: citable sentences and indexed rows disagree ({row - s0} != {s1 - s0})")
    with cur.copy(f"COPY rag_chunks ({_CHUNK_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["text", "int4", "text", "text", "int4", "int4", "int4[]", "text[]", "vector"])
        for doc_id in doc_ids:
            c0, c1, s0, s1 = seg.spans[doc_id]
            for ord_, i in enumerate(range(c0, c1)):
                c = seg.chunks[i]
                copy.write_row((doc_id, ord_, c.id, c.section, c.start, c.end, [j - s0 for j in c.sentence_ids],
                                chunk_terms[i], chunk_vectors[i]))


def delete(conn: psycopg.Connection, doc_ids: Iterable[str]) -> None:
    """Remove documents with their sentences and chunks (cascade), inside the caller's transaction."""
    conn.execute("DELETE FROM rag_documents WHERE doc_id = ANY(%s)", (list(doc_ids),))


def read(conn: psycopg.Connection, doc_ids: list[str] | None = None, spill_dir: Path | None = None) -> segments.Segment | None:
    """The documents ``doc_ids`` (all when None) that are in the tables, as one segment in path
    order; None when there are none. Call inside a transaction. ``spill_dir``: where large sentence
    vectors are kept in a file instead of memory (``rag.indexing.spill``).

    Rows are streamed by a server-side cursor, in batches, into preallocated columns: sentences
    and chunks as numpy columns (``SentenceTable``, ``ChunkTable``), not one Python object per
    row, sentence vectors as float16 (``_SENTENCE_VECTORS``), terms as int32 ids. Nothing
    corpus-sized is held twice while loading except the chunk vectors, which FAISS copies.
    """
    where, params = ("", ()) if doc_ids is None else (" WHERE doc_id = ANY(%s)", (list(doc_ids),))
    docs = {r[0]: r for r in conn.execute(f"SELECT doc_id, text, sha256 FROM rag_documents{where}", params)}
    if not docs:
        return None
    order = sorted(docs, key=segments.doc_key)
    dim = int(conn.execute("SELECT value->>'dim' FROM rag_meta WHERE key = 'build'").fetchone()[0])
    # Rows in path order of their documents, as a segment has them: the path's parts compared
    # bytewise (UTF-8 bytes sort as code points do), which is how segments.doc_key's tuples compare.
    by_path = "ORDER BY string_to_array(doc_id, '/')::text[] COLLATE \"C\", ord"
    n_rows, n_cited = conn.execute(f"SELECT count(*), count(*) FILTER (WHERE citable) FROM rag_sentences{where}",
                                   params).fetchone()
    sentences = _Rows(conn, f"SELECT {_SENTENCE_COLUMNS} FROM rag_sentences{where} {by_path}", params, order,
                      n_rows, n_cited, dim, _SENTENCE_VECTORS, spill_dir=spill_dir)
    for doc_id, _, start, end, section, citable, role, terms, vec in sentences:
        sentences.add_row(doc_id, start, end, section, citable, _ROLE[role])
        if citable:
            sentences.add(terms, vec)
    table = sentences.sentence_table()
    cited = table if table.citable.all() else table.take(np.flatnonzero(table.citable))
    # Each document's first citable row: its chunks' sentence ids are counted from there.
    first = np.searchsorted(table.doc, np.arange(len(order)), side="left")
    base = np.concatenate([[0], np.cumsum(table.citable)])[first]
    n_chunks = conn.execute(f"SELECT count(*) FROM rag_chunks{where}", params).fetchone()[0]
    chunk_rows = _Rows(conn, f"SELECT {_CHUNK_COLUMNS} FROM rag_chunks{where} {by_path}", params, order,
                       n_chunks, n_chunks, dim, np.float32, sentences.sections)
    for doc_id, _, chunk_id, section, start, end, ids, terms, vec in chunk_rows:
        if chunk_id != f"{doc_id}#{start}-{end}":  # a ChunkTable names chunks so: refuse another name
            raise IndexStoreError(f"chunk {chunk_id!r} is not named after its span")
        chunk_rows.add_row(doc_id, start, end, section, True, 0, ids)
        chunk_rows.add(terms, vec)
    by_id = {d: Document(d, docs[d][1], docs[d][2], table[a:b])
             for d, a, b in zip(order, first.tolist(), [*first[1:].tolist(), len(table)])}
    chunks = chunk_rows.chunk_table(base)
    return segments.Segment(by_id, cited, chunks, vectors.build(chunk_rows.vectors()), sentences.vectors(),
                            chunk_rows.terms(), sentences.terms(), spans=_spans(order, chunks.doc, cited.doc))


def _spans(order: list[str], chunk_doc: np.ndarray, sentence_doc: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """Each document's rows ``(c0, c1, s0, s1)`` from the columns (``Segment`` would otherwise
    make every row's object to find them)."""
    ranks = np.arange(len(order) + 1)
    c, s = np.searchsorted(chunk_doc, ranks).tolist(), np.searchsorted(sentence_doc, ranks).tolist()
    return {d: (c[k], c[k + 1], s[k], s[k + 1]) for k, d in enumerate(order)}


# The sentence vectors of a view read from Postgres are kept as float16 (half the memory: they are
# the biggest part of a view, docs/benchmarks.md) and read back as float32; the database keeps
# float32. See ``segments.RowVectors`` and the precision check in tests/test_pg_view_memory.py.
_SENTENCE_VECTORS = np.float16
_ROLE = {role: k for k, role in enumerate(SentenceTable.ROLES)}


def narrowed(index: Index, spill_dir: Path | None = None) -> Index:
    """``index`` (one segment built in memory) with its sentence vectors kept as a view read from
    the store keeps them (``_SENTENCE_VECTORS``, in a file in ``spill_dir`` when large), so the
    server that wrote the store answers, and uses memory, as every server that loads it does."""
    seg = index.layout.segments[0]
    # Its own build, not yet shared: the float32 array is let go once copied.
    seg.sentence_vectors = spill.stacked([seg.sentence_vectors], _SENTENCE_VECTORS, spill_dir)
    return dataclasses.replace(index, sentence_vectors=segments.RowVectors(
        [seg.sentence_vectors], index.layout.sentence_rows, seg.sentence_vectors.shape[1]))


class _Rows:
    """Rows of a query streamed in batches into preallocated columns: each row's document
    (position in ``order``), span, section (numbered, each distinct title kept once), citability,
    role and sentence ids; the terms of the rows with a vector (as a ``FlatCorpus``, numbered as
    ``FlatCorpus.of`` numbers them, int32 ids) and their vectors (one preallocated array)."""

    BATCH = 5000

    def __init__(self, conn: psycopg.Connection, sql: str, params: tuple, order: list[str], n_rows: int,
                 n_vectors: int, dim: int, dtype, sections: dict[str, int] | None = None,
                 spill_dir: Path | None = None):
        self.conn, self.sql, self.params, self.order = conn, sql, params, order
        self.rank = {d: i for i, d in enumerate(order)}
        self._vectors = spill.empty((n_vectors, dim), dtype, spill_dir)
        self._filled = 0
        self._vocab: dict[str, int] = {}
        self._ids = array("i")
        self._lengths = array("q")
        self.sections = {} if sections is None else sections
        self._doc, self._start, self._end, self._section = array("i"), array("i"), array("i"), array("i")
        self._citable, self._role = bytearray(), bytearray()
        self._sentence_ids, self._offsets = array("i"), array("q", [0])

    def __iter__(self):
        cur = self.conn.cursor(name="rag_rows", binary=True)  # server-side: fetched BATCH rows at a time
        vector_oid = self.conn.adapters.types["vector"].oid
        cur.adapters.register_loader(vector_oid, _RawVector)
        rank = self.rank
        last, settled = -1, 0
        try:
            cur.execute(self.sql, self.params)
            while batch := cur.fetchmany(self.BATCH):  # not row by row: psycopg's per-row fetch cost a third of a load
                for row in batch:
                    if rank[row[0]] < last:  # the database sorted paths otherwise than doc_key: refuse, never misplace
                        raise IndexStoreError(f"rows of {row[0]!r} came back out of path order")
                    last = rank[row[0]]
                    yield row
                # Written rows leave memory as they go, not all at the end.
                spill.settle(self._vectors, settled, self._filled)
                settled = self._filled
        finally:
            cur.close()

    def add_row(self, doc_id: str, start: int, end: int, section: str, citable: bool, role: int,
                sentence_ids: list[int] = ()) -> None:
        """Keep one row's fields (a chunk's ``sentence_ids`` local to its document)."""
        self._doc.append(self.rank[doc_id])
        self._start.append(start)
        self._end.append(end)
        self._section.append(self.sections.setdefault(section, len(self.sections)))
        self._citable.append(citable)
        self._role.append(role)
        if sentence_ids:
            self._sentence_ids.extend(sentence_ids)
            self._offsets.append(len(self._sentence_ids))

    def add(self, terms: list[str], vec: bytes) -> None:
        """Keep one row's terms and vector (pgvector's binary form: dim, unused, float32s big-endian)."""
        self._vectors[self._filled] = np.frombuffer(vec, dtype=">f4", offset=4)
        self._filled += 1
        setdefault = self._vocab.setdefault
        self._ids.extend([setdefault(t, len(self._vocab)) for t in terms])
        self._lengths.append(len(terms))

    def _column(self, values) -> np.ndarray:
        return np.frombuffer(values, dtype=np.int32) if len(values) else np.zeros(0, dtype=np.int32)

    def _titles(self) -> list[str]:
        return list(self.sections)  # numbered in order of first appearance

    def sentence_table(self) -> SentenceTable:
        """The rows as sentences."""
        return SentenceTable(self.order, self._titles(), self._column(self._doc), self._column(self._start),
                             self._column(self._end), self._column(self._section),
                             np.frombuffer(bytes(self._citable), dtype=np.bool_),
                             np.frombuffer(bytes(self._role), dtype=np.int8))

    def chunk_table(self, base: np.ndarray) -> ChunkTable:
        """The rows as chunks, their sentence ids moved by their document's ``base`` (its first
        citable sentence among the segment's)."""
        doc = self._column(self._doc)
        offsets = np.frombuffer(self._offsets, dtype=np.int64)
        ids = self._column(self._sentence_ids) + np.repeat(base[doc], np.diff(offsets)).astype(np.int32)
        return ChunkTable(self.order, self._titles(), doc, self._column(self._start), self._column(self._end),
                          self._column(self._section), ids, offsets)

    def vectors(self) -> np.ndarray:
        """Every kept vector, one row each."""
        return self._vectors[: self._filled]

    def terms(self) -> lexical.FlatCorpus:
        """Every kept row's terms."""
        lengths = np.frombuffer(self._lengths, dtype=np.int64) if len(self._lengths) else np.zeros(0, dtype=np.int64)
        return lexical.FlatCorpus(lexical.FlatIds(self._column(self._ids), lengths), self._vocab)


class _RawVector(Loader):
    """pgvector's binary value as bytes (no per-row object: ``_Rows.add`` decodes it into its array)."""

    format = Format.BINARY

    def load(self, data) -> bytes:
        return bytes(data)


class _TermLists:
    """Row ``i``'s terms of a ``FlatCorpus`` as a list of strings (the inverse of ``FlatCorpus.of``)."""

    def __init__(self, flat: lexical.FlatCorpus):
        self.words = np.empty(len(flat.vocab), dtype=object)
        self.words[np.fromiter(flat.vocab.values(), dtype=np.int64, count=len(flat.vocab))] = list(flat.vocab)
        self.ids = flat.ids.ids
        self.starts = np.concatenate([[0], np.cumsum(flat.ids.lengths)]).astype(np.int64)

    def __getitem__(self, i: int) -> list[str]:
        return self.words[self.ids[self.starts[i]:self.starts[i + 1]]].tolist()
