"""Documents to rows and back: a segment's documents written into the tables (binary COPY),
and documents read from them into a segment (``rag.indexing.segments.Segment``) that splices
into a server's view exactly as a segment built in memory does."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import psycopg

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
                raise ValueError(f"{doc_id}: citable sentences and indexed rows disagree ({row - s0} != {s1 - s0})")
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
    order; None when there are none."""
    where, params = ("", ()) if doc_ids is None else (" WHERE doc_id = ANY(%s)", (list(doc_ids),))
    cur = conn.cursor(binary=True)
    docs = {r[0]: r for r in cur.execute(f"SELECT doc_id, text, sha256 FROM rag_documents{where}", params)}
    if not docs:
        return None
    sentence_rows: dict[str, list] = {d: [] for d in docs}
    for r in cur.execute(f"SELECT {_SENTENCE_COLUMNS} FROM rag_sentences{where} ORDER BY doc_id, ord", params):
        sentence_rows[r[0]].append(r)
    chunk_rows: dict[str, list] = {d: [] for d in docs}
    for r in cur.execute(f"SELECT {_CHUNK_COLUMNS} FROM rag_chunks{where} ORDER BY doc_id, ord", params):
        chunk_rows[r[0]].append(r)
    return _segment([docs[d] for d in sorted(docs, key=segments.doc_key)], sentence_rows, chunk_rows)


def _segment(doc_rows: list, sentence_rows: dict[str, list], chunk_rows: dict[str, list]) -> segments.Segment:
    """A segment of these documents' rows (sentence ids made segment-wide again)."""
    by_id, sentences, chunks = {}, [], []
    svecs, cvecs, sterms, cterms = [], [], [], []
    for doc_id, text, sha in doc_rows:
        base = len(sentences)
        every = []
        for _, _, start, end, section, citable, role, terms, vec in sentence_rows[doc_id]:
            s = Sentence(doc_id, start, end, section, citable, role)
            every.append(s)
            if citable:
                sentences.append(s)
                sterms.append(list(terms))
                svecs.append(vec.to_numpy())
        by_id[doc_id] = Document(doc_id, text, sha, tuple(every))
        for _, _, chunk_id, section, start, end, ids, terms, vec in chunk_rows[doc_id]:
            chunks.append(Chunk(chunk_id, doc_id, section, start, end, tuple(base + j for j in ids)))
            cterms.append(list(terms))
            cvecs.append(vec.to_numpy())
    dim = len(svecs[0]) if svecs else len(cvecs[0])
    sentence_vectors = np.vstack(svecs).astype(np.float32) if svecs else np.zeros((0, dim), np.float32)
    chunk_vectors = np.vstack(cvecs).astype(np.float32) if cvecs else np.zeros((0, dim), np.float32)
    return segments.Segment(by_id, sentences, chunks, vectors.build(chunk_vectors), sentence_vectors,
                            lexical.FlatCorpus.of(cterms), lexical.FlatCorpus.of(sterms))


class _TermLists:
    """Row ``i``'s terms of a ``FlatCorpus`` as a list of strings (the inverse of ``FlatCorpus.of``)."""

    def __init__(self, flat: lexical.FlatCorpus):
        self.words = np.empty(len(flat.vocab), dtype=object)
        self.words[np.fromiter(flat.vocab.values(), dtype=np.int64, count=len(flat.vocab))] = list(flat.vocab)
        self.ids = flat.ids.ids
        self.starts = np.concatenate([[0], np.cumsum(flat.ids.lengths)]).astype(np.int64)

    def __getitem__(self, i: int) -> list[str]:
        return self.words[self.ids[self.starts[i]:self.starts[i + 1]]].tolist()
