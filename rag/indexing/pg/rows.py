"""Documents to rows and back: a segment's documents written into the tables (binary COPY),
and documents read from them into a segment (``rag.indexing.segments.Segment``) that splices
into a server's view exactly as a segment built in memory does."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import psycopg
from psycopg.adapt import Loader
from psycopg.pq import Format

from rag.errors import IndexStoreError
from rag.indexing import lexical, segments, vectors
from rag.ingest.chunks import Chunk
from rag.ingest.corpus import Document, Sentence
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


def read(conn: psycopg.Connection, doc_ids: list[str] | None = None) -> segments.Segment | None:
    """The documents ``doc_ids`` (all when None) that are in the tables, as one segment in path
    order; None when there are none. Call inside a transaction (rows are streamed by a server-side
    cursor, in batches, so a large store is never held twice as Python objects)."""
    where, params = ("", ()) if doc_ids is None else (" WHERE doc_id = ANY(%s)", (list(doc_ids),))
    docs = {r[0]: r for r in conn.execute(f"SELECT doc_id, text, sha256 FROM rag_documents{where}", params)}
    if not docs:
        return None
    order = sorted(docs, key=segments.doc_key)
    dim = int(conn.execute("SELECT value->>'dim' FROM rag_meta WHERE key = 'build'").fetchone()[0])
    # Rows in path order of their documents, as a segment has them: the path's parts compared
    # bytewise (UTF-8 bytes sort as code points do), which is how segments.doc_key's tuples compare.
    by_path = "ORDER BY string_to_array(doc_id, '/')::text[] COLLATE \"C\", ord"
    sentences = _Rows(conn, f"SELECT {_SENTENCE_COLUMNS} FROM rag_sentences{where} {by_path}", params, dim, order,
                      f"SELECT count(*) FROM rag_sentences{where} {'AND' if where else 'WHERE'} citable", params)
    by_doc: dict[str, list[Sentence]] = {d: [] for d in docs}
    cited: list[Sentence] = []
    base: dict[str, int] = {}
    for doc_id, _, start, end, section, citable, role, terms, vec in sentences:
        s = Sentence(doc_id, start, end, section, citable, role)
        by_doc[doc_id].append(s)
        if citable:
            base.setdefault(doc_id, len(cited))
            cited.append(s)
            sentences.add(terms, vec)
    chunk_rows = _Rows(conn, f"SELECT {_CHUNK_COLUMNS} FROM rag_chunks{where} {by_path}", params, dim, order,
                       f"SELECT count(*) FROM rag_chunks{where}", params)
    chunks = []
    for doc_id, _, chunk_id, section, start, end, ids, terms, vec in chunk_rows:
        chunks.append(Chunk(chunk_id, doc_id, section, start, end, tuple(base[doc_id] + j for j in ids)))
        chunk_rows.add(terms, vec)
    by_id = {d: Document(d, docs[d][1], docs[d][2], tuple(by_doc[d])) for d in order}
    return segments.Segment(by_id, cited, chunks, vectors.build(chunk_rows.vectors()), sentences.vectors(),
                            chunk_rows.terms(), sentences.terms())


class _Rows:
    """Rows of a query streamed in batches, collecting their terms (as a ``FlatCorpus``, numbered
    as ``FlatCorpus.of`` numbers them) and their vectors (into one preallocated array)."""

    BATCH = 5000

    def __init__(self, conn: psycopg.Connection, sql: str, params: tuple, dim: int, order: list[str],
                 count_sql: str, count_params: tuple):
        self.conn, self.sql, self.params, self.order = conn, sql, params, order
        n = conn.execute(count_sql, count_params).fetchone()[0]
        self._vectors = np.empty((n, dim), dtype=np.float32)
        self._filled = 0
        self._vocab: dict[str, int] = {}
        self._ids: list[np.ndarray] = []
        self._lengths: list[int] = []

    def __iter__(self):
        cur = self.conn.cursor(name="rag_rows", binary=True)  # server-side: fetched BATCH rows at a time
        vector_oid = self.conn.adapters.types["vector"].oid
        cur.adapters.register_loader(vector_oid, _RawVector)
        cur.itersize = self.BATCH
        rank = {d: i for i, d in enumerate(self.order)}
        last = -1
        try:
            cur.execute(self.sql, self.params)
            for row in cur:
                if rank[row[0]] < last:  # the database sorted paths otherwise than doc_key: refuse, never misplace
                    raise IndexStoreError(f"rows of {row[0]!r} came back out of path order")
                last = rank[row[0]]
                yield row
        finally:
            cur.close()

    def add(self, terms: list[str], vec: bytes) -> None:
        """Keep one row's terms and vector (pgvector's binary form: dim, unused, float32s big-endian)."""
        self._vectors[self._filled] = np.frombuffer(vec, dtype=">f4", offset=4)
        self._filled += 1
        setdefault = self._vocab.setdefault
        self._ids.append(np.fromiter((setdefault(t, len(self._vocab)) for t in terms), dtype=np.int64, count=len(terms)))
        self._lengths.append(len(terms))

    def vectors(self) -> np.ndarray:
        """Every kept vector, one row each."""
        return self._vectors[: self._filled]

    def terms(self) -> lexical.FlatCorpus:
        """Every kept row's terms."""
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int64)
        return lexical.FlatCorpus(lexical.FlatIds(ids, np.array(self._lengths, dtype=np.int64)), self._vocab)


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
