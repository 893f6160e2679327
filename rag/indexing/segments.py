"""The index as segments: immutable blocks of documents, combined into one live view.

A segment holds some documents with everything derived from them: their citable sentences,
their chunks (sentence ids local to the segment), the chunk vectors in a FAISS index of the
segment's own, the sentence vectors, and the BM25 terms of every chunk and sentence as
postings. A segment never changes once built. An index is a list of segments and, for
each, which of its documents are still live: deleting a document only drops it from that
list (a tombstone), replacing one drops the old version and adds a segment with the new.

What the rest of the code reads from ``rag.indexing.index.Index`` is the live view, in the
order a build from scratch has (documents in path order, each document's rows together):
``sentences``, ``chunks`` (sentence ids into ``sentences``), ``sentence_vectors``,
``chunk_vectors`` and the two BM25s. ``apply`` makes the view of a change from the view
before it by splicing one document's rows in or out (the lists are copied, never changed:
a reader holding the old index keeps a whole, unchanged one), so a change costs about the
changed document plus copying row lists, not re-deriving the corpus.

BM25 keeps no precomputed score matrix: each segment keeps term frequencies (postings) and
the index keeps the corpus statistics (document frequencies, number of texts, total length)
exact on every change; a query's scores are computed for its terms only, with the same
Lucene arithmetic as ``lexical.VectorisedBM25``, so an index changed step by step scores
exactly like one built from scratch.

Segments are merged (``merge_plan``/``merge``) when there are more than ``MAX_SEGMENTS`` or
tombstoned rows exceed ``MAX_DEAD_SHARE``: the small recent segments merge often and
cheaply, the big first one only when the rest has grown to its size, like a search engine's
tiered merges.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from rag.indexing import lexical, spill, vectors
from rag.ingest.chunks import Chunk
from rag.ingest.corpus import Document, Sentence
from rag.ingest.rows import LazyRows

# More segments than this and the newest are merged (each query searches every segment).
MAX_SEGMENTS = 8
# Tombstoned rows above this share of all rows and every segment is merged (compacted).
MAX_DEAD_SHARE = 0.25


def doc_key(doc_id: str) -> tuple[str, ...]:
    """Sort key of a document id: the order in which ``list_corpus_files`` reads paths."""
    return tuple(doc_id.split("/"))


@dataclass(eq=False)
class Segment:
    """Documents with their sentences, chunks, vectors and BM25 postings; immutable once built."""

    documents: dict[str, Document]  # in row order
    sentences: list[Sentence]
    chunks: list[Chunk]  # sentence_ids index this segment's ``sentences``
    chunk_index: object  # a faiss.Index over the chunk rows
    sentence_vectors: np.ndarray
    chunk_terms: lexical.FlatCorpus
    sentence_terms: lexical.FlatCorpus
    name: str | None = None  # the build folder holding its files, once published
    spans: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # doc -> c0, c1, s0, s1

    def __post_init__(self) -> None:
        self.chunk_postings = lexical.Postings(self.chunk_terms)
        self.sentence_postings = lexical.Postings(self.sentence_terms)
        if not self.spans:
            c = _runs([ch.doc_id for ch in self.chunks])
            s = _runs([se.doc_id for se in self.sentences])
            self.spans = {d: (*c.get(d, (0, 0)), *s.get(d, (0, 0))) for d in self.documents}

    @property
    def n_chunks(self) -> int:
        return len(self.chunks)

    @property
    def n_sentences(self) -> int:
        return len(self.sentences)


def _runs(doc_ids: list[str]) -> dict[str, tuple[int, int]]:
    rows: dict[str, tuple[int, int]] = {}
    for i, doc_id in enumerate(doc_ids):
        rows[doc_id] = (rows.get(doc_id, (i, i))[0], i + 1)
    return rows


@dataclass(eq=False)
class Layout:
    """Which rows of which segment make the live view, in the view's order."""

    segments: list[Segment]
    live: list[tuple[str, ...]]  # each segment's live documents
    order: list[str]  # live documents in view order
    keys: list[tuple[str, ...]]  # doc_key of each, for bisecting
    where: dict[str, int]  # document -> its segment's position
    chunk_counts: np.ndarray  # per document in ``order``
    sentence_counts: np.ndarray
    chunk_rows: np.ndarray  # view row -> physical row (segment base + local row)
    sentence_rows: np.ndarray

    @property
    def chunk_bases(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([s.n_chunks for s in self.segments])]).astype(np.int64)

    @property
    def sentence_bases(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([s.n_sentences for s in self.segments])]).astype(np.int64)

    def dead_rows(self) -> int:
        """Rows of tombstoned documents, still in their segments."""
        return sum(s.n_sentences for s in self.segments) - len(self.sentence_rows)

    def sentence_ids(self, doc_id: str) -> range:
        """The view's sentence ids of a live document (consecutive, as documents are in ``order``);
        empty for one the view lacks."""
        pos = bisect_left(self.keys, doc_key(doc_id))
        if pos == len(self.order) or self.order[pos] != doc_id:
            return range(0)
        start = int(self.sentence_counts[:pos].sum())
        return range(start, start + int(self.sentence_counts[pos]))


def _inverse(rows: np.ndarray, total: int) -> np.ndarray:
    """Physical row -> view row, -1 for rows of tombstoned documents."""
    inv = np.full(total, -1, dtype=np.int64)
    inv[rows] = np.arange(len(rows), dtype=np.int64)
    return inv


class RowVectors:
    """The sentence vectors of the view, read from the segments' blocks (an ndarray stand-in:
    ``v[rows]``, ``v[a:b]``, ``v @ q``, ``np.asarray(v)``, ``dtype``, ``shape``).

    Always float32 to its readers. A block may be kept as float16 (a segment read from Postgres:
    ``rag.indexing.pg.rows``): only the rows a read touches are widened, and ``v @ q`` widens a
    block a slice at a time, so the float32 copy of a whole block is never made."""

    SLICE = 65536  # rows widened at a time for ``v @ q``

    def __init__(self, blocks: list[np.ndarray], rows: np.ndarray, dim: int):
        self.blocks = blocks
        self.rows = rows
        self.bases = np.concatenate([[0], np.cumsum([len(b) for b in blocks])]).astype(np.int64)
        self.dtype = np.dtype(np.float32)
        self.shape = (len(rows), dim)
        # One block read in order: the view is that block itself, no copy, no gather.
        self._whole = blocks[0] if len(blocks) == 1 and len(rows) == len(blocks[0]) and (
            len(rows) == 0 or (rows[0] == 0 and rows[-1] == len(rows) - 1 and np.all(np.diff(rows) == 1))) else None

    def __len__(self) -> int:
        return self.shape[0]

    def _gather(self, phys: np.ndarray) -> np.ndarray:
        out = np.empty((len(phys), self.shape[1]), dtype=np.float32)
        seg = np.searchsorted(self.bases, phys, side="right") - 1
        for k in np.unique(seg):
            sel = seg == k
            out[sel] = self.blocks[k][phys[sel] - self.bases[k]]
        return out

    def __getitem__(self, idx):
        if self._whole is not None:
            return self._whole[idx].astype(np.float32, copy=False)
        if isinstance(idx, (int, np.integer)):
            return self._gather(self.rows[[idx]])[0]
        return self._gather(np.asarray(self.rows[idx]).reshape(-1))

    def __matmul__(self, q: np.ndarray) -> np.ndarray:
        if self._whole is not None:
            return _dot(self._whole, q)
        return np.concatenate([_dot(b, q) for b in self.blocks])[self.rows]

    def __array__(self, dtype=None, copy=None):
        out = self._whole if self._whole is not None else self._gather(self.rows)
        return out.astype(dtype or np.float32, copy=False)


def _dot(block: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``block @ q`` in float32, a float16 block widened ``RowVectors.SLICE`` rows at a time."""
    if block.dtype == np.float32:
        return block @ q
    q = np.asarray(q, dtype=np.float32)
    step = RowVectors.SLICE
    return np.concatenate([block[i:i + step].astype(np.float32) @ q for i in range(0, len(block), step)]
                          or [np.zeros(0, dtype=np.float32)])


class ChunkVectors:
    """The chunk vectors of the view: each segment's FAISS index searched, tombstoned rows
    dropped, results merged best first (ties by view row, as one index over all rows gives)."""

    def __init__(self, layout: Layout, inv: np.ndarray):
        self.layout = layout
        self.inv = inv
        self.bases = layout.chunk_bases
        self.ntotal = len(layout.chunk_rows)
        live = np.bincount(np.searchsorted(self.bases, layout.chunk_rows, side="right") - 1,
                           minlength=len(layout.segments))
        self.dead = [s.n_chunks - int(n) for s, n in zip(layout.segments, live)]
        self._selectors: dict = {}

    @property
    def d(self) -> int:
        return self.layout.segments[0].chunk_index.d

    def _params(self, k: int, seg: Segment, base: int):
        """Search parameters leaving out the segment's tombstoned rows (made once per segment)."""
        if k not in self._selectors:
            local = np.flatnonzero(self.inv[base:base + seg.n_chunks] < 0).astype(np.int64)
            sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(local))
            index = seg.chunk_index
            params = (faiss.SearchParametersIVF(sel=sel, nprobe=index.nprobe) if isinstance(index, faiss.IndexIVF)
                      else faiss.SearchParameters(sel=sel))
            self._selectors[k] = (params, sel, local)  # faiss keeps pointers: hold the objects
        return self._selectors[k][0]

    def search_rows(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the ``k`` nearest live chunks over every segment (only ``allowed`` rows, if given)."""
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        found_s, found_r = [], []
        for n, (seg, base, dead) in enumerate(zip(self.layout.segments, self.bases, self.dead)):
            if seg.n_chunks == dead:
                continue
            if allowed is not None:  # a scoped question: this segment's rows among the allowed ones
                local = np.flatnonzero(np.isin(self.inv[base:base + seg.n_chunks], allowed)).astype(np.int64)
                if not len(local):
                    continue
                selector = faiss.IDSelectorBatch(local)  # held here while FAISS searches with it
                index = seg.chunk_index
                params = (faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe) if isinstance(index, faiss.IndexIVF)
                          else faiss.SearchParameters(sel=selector))
                scores, ids = index.search(q, min(len(local), k), params=params)
            elif dead:
                kk = min(seg.n_chunks - dead, k)
                scores, ids = seg.chunk_index.search(q, kk, params=self._params(n, seg, int(base)))
            else:
                scores, ids = seg.chunk_index.search(q, min(seg.n_chunks, k))
            ok = ids[0] >= 0
            rows = self.inv[ids[0][ok] + base]
            keep = rows >= 0
            found_s.append(scores[0][ok][keep])
            found_r.append(rows[keep])
        scores = np.concatenate(found_s) if found_s else np.zeros(0, dtype=np.float32)
        rows = np.concatenate(found_r) if found_r else np.zeros(0, dtype=np.int64)
        order = np.lexsort((rows, -scores))[:k]
        want = max(1, min(k, self.ntotal))
        out_s = np.full(want, -np.inf, dtype=np.float32)
        out_r = np.full(want, -1, dtype=np.int64)
        out_s[:len(order)], out_r[:len(order)] = scores[order], rows[order]
        return out_s, out_r

    def reconstruct_n(self, start: int, n: int) -> np.ndarray:
        blocks = [s.chunk_index.reconstruct_n(0, s.n_chunks) if s.n_chunks else
                  np.zeros((0, self.d), dtype=np.float32) for s in self.layout.segments]
        return RowVectors(blocks, self.layout.chunk_rows, self.d)[start:start + n]

    def describe(self) -> str:
        kinds = [vectors.describe(s.chunk_index) for s in self.layout.segments]
        return kinds[0] if len(kinds) == 1 else f"{len(kinds)} segments: " + ", ".join(kinds)


def _postings(seg: Segment, kind: str) -> lexical.Postings:
    return seg.chunk_postings if kind == "chunks" else seg.sentence_postings


def _doc_stats(seg: Segment, doc_id: str, kind: str) -> lexical.TermStats:
    a, b = (0, 1) if kind == "chunks" else (2, 3)
    span = seg.spans[doc_id]
    return _postings(seg, kind).stats(span[a], span[b])


def _corpus_stats(layout: Layout, kind: str) -> lexical.TermStats:
    """Document frequencies and total length of the live texts, from scratch: each segment's
    whole statistics less those of its tombstoned documents (few, until a merge)."""
    df: dict[str, int] = {}
    total = 0
    for seg, live in zip(layout.segments, layout.live):
        if not live:
            continue
        whole = _postings(seg, kind).whole_stats()
        alive = set(live)
        dead = [d for d in seg.documents if d not in alive]
        for t, n in whole.df.items():
            df[t] = df.get(t, 0) + n
        total += whole.length
        for d in dead:
            gone = _doc_stats(seg, d, kind)
            for t, n in gone.df.items():
                df[t] -= n
            total -= gone.length
    return lexical.TermStats({t: n for t, n in df.items() if n}, total)


def _bm25(layout: Layout, kind: str, inv: np.ndarray, stats: lexical.TermStats | None = None) -> lexical.SegmentedBm25:
    """BM25 over the view's rows, with the corpus statistics of the live documents."""
    stats = stats or _corpus_stats(layout, kind)
    bases = layout.chunk_bases if kind == "chunks" else layout.sentence_bases
    parts = [(_postings(s, kind), int(base)) for s, base in zip(layout.segments, bases)]
    size = len(layout.chunk_rows if kind == "chunks" else layout.sentence_rows)
    return lexical.SegmentedBm25(parts, inv, size, stats.df, stats.length, layout, kind)


def _changed_stats(index, kind: str, removed: set[str], added: Segment | None) -> lexical.TermStats:
    """The statistics of ``index``'s live texts, less the removed documents', plus the added segment's."""
    old = index.chunk_bm25 if kind == "chunks" else index.sentence_bm25
    layout: Layout = index.layout
    df = dict(old.df)
    total = old.total_length
    for d in removed:
        gone = _doc_stats(layout.segments[layout.where[d]], d, kind)
        for t, n in gone.df.items():
            left = df[t] - n
            if left:
                df[t] = left
            else:
                del df[t]
        total -= gone.length
    if added is not None:
        new = _postings(added, kind).whole_stats()
        for t, n in new.df.items():
            df[t] = df.get(t, 0) + n
        total += new.length
    return lexical.TermStats(df, total)


def assemble(segments: list[Segment], live: list[tuple[str, ...]]) -> dict:
    """The live view of ``segments`` from scratch: what ``Index`` is made of."""
    where = {d: k for k, docs in enumerate(live) for d in docs}
    order = sorted(where, key=doc_key)
    cbases = np.concatenate([[0], np.cumsum([s.n_chunks for s in segments])]).astype(np.int64)
    sbases = np.concatenate([[0], np.cumsum([s.n_sentences for s in segments])]).astype(np.int64)
    documents, sentences, runs, crows, srows, ccounts, scounts = {}, [], [], [], [], [], []
    n_sentences = 0
    for doc_id in order:
        k = where[doc_id]
        seg = segments[k]
        c0, c1, s0, s1 = seg.spans[doc_id]
        documents[doc_id] = seg.documents[doc_id]
        runs.append((seg.chunks, c0, c1, n_sentences - s0))
        sentences.append((seg.sentences, s0, s1))
        n_sentences += s1 - s0
        crows.append(np.arange(c0, c1) + cbases[k])
        srows.append(np.arange(s0, s1) + sbases[k])
        ccounts.append(c1 - c0)
        scounts.append(s1 - s0)
    layout = Layout(segments, [tuple(x) for x in live], order, [doc_key(d) for d in order], where,
                    np.array(ccounts, dtype=np.int64), np.array(scounts, dtype=np.int64),
                    np.concatenate(crows).astype(np.int64) if crows else np.zeros(0, np.int64),
                    np.concatenate(srows).astype(np.int64) if srows else np.zeros(0, np.int64))
    return _view(layout, documents, SentenceRows(sentences), ChunkRows(runs))


def _view(layout: Layout, documents, sentences, chunks, stats: dict | None = None) -> dict:
    dim = layout.segments[0].sentence_vectors.shape[1]
    cinv = _inverse(layout.chunk_rows, int(layout.chunk_bases[-1]))
    sinv = _inverse(layout.sentence_rows, int(layout.sentence_bases[-1]))
    return {
        "documents": documents, "sentences": sentences, "chunks": chunks,
        "chunk_vectors": ChunkVectors(layout, cinv),
        "sentence_vectors": RowVectors([s.sentence_vectors for s in layout.segments], layout.sentence_rows, dim),
        "chunk_bm25": _bm25(layout, "chunks", cinv, (stats or {}).get("chunks")),
        "sentence_bm25": _bm25(layout, "sentences", sinv, (stats or {}).get("sentences")),
        "layout": layout,
    }


class ChunkRows(LazyRows):
    """The view's chunks, kept as runs of segment chunks each with the offset its sentence ids
    move by: ``rows[i]`` makes chunk ``i`` with its ids moved when it is read. Splicing a
    document in or out changes a few runs, however many chunks follow it (moving the ids of
    every following chunk took most of a second at 100k chunks)."""

    noun = "chunk row"

    def __init__(self, runs: list[tuple[list[Chunk], int, int, int]]):
        joined: list[list] = []
        for src, a, b, delta in runs:
            if b <= a:
                continue
            if joined and joined[-1][0] is src and joined[-1][2] == a and joined[-1][3] == delta:
                joined[-1][2] = b
            else:
                joined.append([src, a, b, delta])
        self.runs = [tuple(r) for r in joined]
        self.starts = [0]
        for _, a, b, _ in self.runs:
            self.starts.append(self.starts[-1] + b - a)

    def __len__(self) -> int:
        return self.starts[-1]

    def _row(self, i: int) -> Chunk:
        k = bisect_right(self.starts, i) - 1
        src, a, _, delta = self.runs[k]
        chunk = src[a + i - self.starts[k]]
        return chunk if delta == 0 else _moved(chunk, delta)

    def __iter__(self):
        for src, a, b, delta in self.runs:
            for chunk in _run(src, a, b):
                yield chunk if delta == 0 else _moved(chunk, delta)

    def __repr__(self) -> str:
        return f"ChunkRows({len(self)} chunks in {len(self.runs)} runs)"

    def cut(self, start: int, stop: int, delta: int = 0) -> list[tuple[list[Chunk], int, int, int]]:
        """The runs of rows ``start:stop``, their ids moved ``delta`` further."""
        out = []
        k = max(0, bisect_right(self.starts, start) - 1)
        while k < len(self.runs) and self.starts[k] < stop:
            src, a, b, d = self.runs[k]
            lo = a + max(0, start - self.starts[k])
            hi = a + min(b - a, stop - self.starts[k])
            if hi > lo:
                out.append((src, lo, hi, d + delta))
            k += 1
        return out


def _run(src, a: int, b: int):
    """Rows ``a:b`` of a list (sliced) or of a table (read one by one: a slice of a
    ``ChunkTable`` would make every row's object at once)."""
    return src[a:b] if isinstance(src, list) else (src[j] for j in range(a, b))


class SentenceRows(LazyRows):
    """The view's sentences, kept as runs of segment rows (a list stand-in, as ``ChunkRows``):
    a segment read from Postgres keeps its sentences as a ``SentenceTable``, whose objects are
    made only when read, and splicing a document in or out changes a few runs."""

    noun = "sentence row"

    def __init__(self, runs: list[tuple[Sequence, int, int]]):
        self.runs = []
        for src, a, b in runs:
            if b <= a:
                continue
            if self.runs and self.runs[-1][0] is src and self.runs[-1][2] == a:
                self.runs[-1] = (src, self.runs[-1][1], b)
            else:
                self.runs.append((src, a, b))
        self.starts = [0]
        for _, a, b in self.runs:
            self.starts.append(self.starts[-1] + b - a)

    def __len__(self) -> int:
        return self.starts[-1]

    def _row(self, i: int) -> Sentence:
        k = bisect_right(self.starts, i) - 1
        src, a, _ = self.runs[k]
        return src[a + i - self.starts[k]]

    def __iter__(self):
        for src, a, b in self.runs:
            yield from (src[a:b] if isinstance(src, list) else (src[j] for j in range(a, b)))

    def __repr__(self) -> str:
        return f"SentenceRows({len(self)} sentences in {len(self.runs)} runs)"

    def cut(self, start: int, stop: int) -> list[tuple[Sequence, int, int]]:
        """The runs of rows ``start:stop``."""
        out = []
        k = max(0, bisect_right(self.starts, start) - 1)
        while k < len(self.runs) and self.starts[k] < stop:
            src, a, b = self.runs[k]
            lo = a + max(0, start - self.starts[k])
            hi = a + min(b - a, stop - self.starts[k])
            if hi > lo:
                out.append((src, lo, hi))
            k += 1
        return out


def _moved(chunk: Chunk, delta: int) -> Chunk:
    ids = chunk.sentence_ids
    moved = object.__new__(Chunk)
    fields = chunk.__dict__.copy()
    fields["sentence_ids"] = tuple([i + delta for i in ids])
    object.__setattr__(moved, "__dict__", fields)
    return moved


def shifted(chunks: list[Chunk], delta: int) -> list[Chunk]:
    """``chunks`` with every sentence id moved by ``delta`` (the same objects when 0)."""
    if delta == 0:
        return list(chunks)
    out = []
    new = object.__new__
    for c in chunks:
        d = new(Chunk)
        d.__dict__.update(c.__dict__)
        d.__dict__["sentence_ids"] = tuple([i + delta for i in c.sentence_ids])
        out.append(d)
    return out


def apply(index, removed: set[str], added: Segment | None) -> dict:
    """The view after dropping the documents ``removed`` and adding ``added``'s, made from
    ``index``'s view by splicing (``index`` itself is left as it was)."""
    old: Layout = index.layout
    stats = {kind: _changed_stats(index, kind, removed, added) for kind in ("chunks", "sentences")}
    segments = list(old.segments) + ([added] if added is not None else [])
    live = [tuple(d for d in docs if d not in removed) for docs in old.live] + (
        [tuple(added.documents)] if added is not None else [])
    order, keys, where = list(old.order), list(old.keys), dict(old.where)
    ccounts, scounts = old.chunk_counts, old.sentence_counts
    crows, srows = old.chunk_rows, old.sentence_rows
    sentences, chunks = index.sentences, index.chunks
    documents = dict(index.documents)
    cbase = int(old.chunk_bases[-1])
    sbase = int(old.sentence_bases[-1])
    new_docs = added.documents if added is not None else {}
    for doc_id in sorted(set(removed) | set(new_docs), key=doc_key):
        pos = bisect_left(keys, doc_key(doc_id))
        present = pos < len(order) and order[pos] == doc_id
        cstart = int(ccounts[:pos].sum())
        sstart = int(scounts[:pos].sum())
        c1 = cstart + (int(ccounts[pos]) if present else 0)
        s1 = sstart + (int(scounts[pos]) if present else 0)
        if doc_id in new_docs:
            a0, a1, b0, b1 = added.spans[doc_id]
            new_sentences = added.sentences[b0:b1]
            new_chunks = [(added.chunks, a0, a1, sstart - b0)]
            new_crows = np.arange(a0, a1, dtype=np.int64) + cbase
            new_srows = np.arange(b0, b1, dtype=np.int64) + sbase
        else:
            new_sentences, new_chunks = [], []
            new_crows = new_srows = np.zeros(0, dtype=np.int64)
        delta = len(new_sentences) - (s1 - sstart)
        sentences = SentenceRows(sentences.cut(0, sstart) + ([(added.sentences, b0, b1)] if new_sentences else [])
                                 + sentences.cut(s1, len(sentences)))
        chunks = ChunkRows(chunks.cut(0, cstart) + new_chunks + chunks.cut(c1, len(chunks), delta))
        crows = np.concatenate([crows[:cstart], new_crows, crows[c1:]])
        srows = np.concatenate([srows[:sstart], new_srows, srows[s1:]])
        counts = (np.array([len(new_crows)]), np.array([len(new_sentences)])) if doc_id in new_docs else (
            np.zeros(0, np.int64), np.zeros(0, np.int64))
        drop = pos + 1 if present else pos
        ccounts = np.concatenate([ccounts[:pos], counts[0], ccounts[drop:]]).astype(np.int64)
        scounts = np.concatenate([scounts[:pos], counts[1], scounts[drop:]]).astype(np.int64)
        if present:
            del order[pos], keys[pos]
            documents.pop(doc_id, None)
            where.pop(doc_id, None)
        if doc_id in new_docs:
            order.insert(pos, doc_id)
            keys.insert(pos, doc_key(doc_id))
            where[doc_id] = len(segments) - 1
    # Documents in view order (a dict keeps insertion order; readers join texts in it).
    if new_docs:
        for d in new_docs:
            documents[d] = new_docs[d]
        documents = {d: documents[d] for d in order}
    layout = Layout(segments, live, order, keys, where, ccounts, scounts, crows, srows)
    return _view(layout, documents, sentences, chunks, stats)


def merge_plan(layout: Layout) -> list[int] | None:
    """Positions of the segments to merge into one, or None when the index is in shape.

    Tombstones above ``MAX_DEAD_SHARE``: all of them. More than ``MAX_SEGMENTS``: the newest,
    reaching back while the next older one is no bigger than twice what is merged so far
    (so the big first segment is merged only when the others have grown to its size).
    """
    n = len(layout.segments)
    if layout.dead_rows() > MAX_DEAD_SHARE * max(1, sum(s.n_sentences for s in layout.segments)):
        return list(range(n))
    if n <= MAX_SEGMENTS:
        return None
    sizes = [s.n_sentences for s in layout.segments]
    first = n - 2
    merged = sizes[-1] + sizes[-2]
    while first > 0 and sizes[first - 1] <= 2 * merged:
        first -= 1
        merged += sizes[first]
    return list(range(first, n))


def merged_segment(layout: Layout, which: list[int], dim: int, spill_dir: Path | None = None) -> Segment:
    """One segment holding the live documents of the segments at ``which`` (vectors and terms copied;
    large sentence vectors into a file in ``spill_dir``, as a view read from Postgres keeps them)."""
    docs = sorted((d for k in which for d in layout.live[k]), key=doc_key)
    documents, sentences, chunks, cvecs, svecs, cterms, sterms = {}, [], [], [], [], [], []
    chunk_blocks = {}
    for d in docs:
        seg = layout.segments[layout.where[d]]
        c0, c1, s0, s1 = seg.spans[d]
        documents[d] = seg.documents[d]
        chunks.extend(shifted(seg.chunks[c0:c1], len(sentences) - s0))
        sentences.extend(seg.sentences[s0:s1])
        if id(seg) not in chunk_blocks:
            chunk_blocks[id(seg)] = seg.chunk_index.reconstruct_n(0, seg.n_chunks) if seg.n_chunks else None
        cvecs.append(chunk_blocks[id(seg)][c0:c1] if c1 > c0 else np.zeros((0, dim), np.float32))
        svecs.append(seg.sentence_vectors[s0:s1])
        cterms.append(lexical.TermRows(seg.chunk_terms, c0, c1))
        sterms.append(lexical.TermRows(seg.sentence_terms, s0, s1))
    # A segment read from Postgres keeps float16 sentence vectors: the merged one keeps them so too.
    narrow = any(v.dtype == np.float16 for v in svecs)
    svec = spill.stacked(svecs, np.float16 if narrow else svecs[0].dtype, spill_dir)
    return Segment(documents, sentences, chunks, vectors.build(np.vstack(cvecs)), svec,
                   lexical.FlatCorpus.joined(cterms), lexical.FlatCorpus.joined(sterms))


def merge(index, which: list[int], spill_dir: Path | None = None) -> dict:
    """The same view with the segments at ``which`` merged into one (placed last); ``spill_dir`` as
    for ``merged_segment``."""
    layout: Layout = index.layout
    dim = index.sentence_vectors.shape[1]
    merged = merged_segment(layout, which, dim, spill_dir)
    keep = [k for k in range(len(layout.segments)) if k not in which]
    segments = [layout.segments[k] for k in keep] + [merged]
    live = [layout.live[k] for k in keep] + [tuple(merged.documents)]
    return assemble(segments, live)
