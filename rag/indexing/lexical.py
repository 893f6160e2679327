"""The one home of BM25 (bm25s, sparse matrices): lexical scores over jieba search terms."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import bm25s
import numpy as np
from scipy import sparse

from rag.ingest.segment import search_terms, stopwords

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build at DEBUG otherwise

# The terms a BM25 index was built from, saved beside it: term ids end to end, each text's
# number of terms, and the terms in id order.
TERM_IDS, TERM_LENGTHS, TERM_VOCAB = "terms_ids.npy", "terms_lengths.npy", "terms_vocab.json"


class Bm25:
    """BM25 over a fixed list of texts, scored for every text at once.

    It keeps the terms it was built from (``terms``), so a later build can take the terms of
    unchanged texts from it instead of running jieba over them again.
    """

    def __init__(self, model: bm25s.BM25, size: int, terms: "FlatCorpus | None" = None):
        self._model = model
        self.size = size
        self.terms = terms
        self._df: dict[str, int] | None = None

    @classmethod
    def build(cls, texts: list[str]) -> "Bm25":
        """Index ``texts`` by their jieba search terms."""
        return cls.from_terms([terms_of(t) for t in texts])

    @classmethod
    def from_terms(cls, terms: list[list[str]]) -> "Bm25":
        """Index documents given as lists of terms (each list non-empty)."""
        return cls.from_flat(FlatCorpus.of(terms))

    @classmethod
    def from_flat(cls, flat: "FlatCorpus") -> "Bm25":
        """Index documents given end to end as term ids (``FlatCorpus``)."""
        model = VectorisedBM25()
        model.index(flat, show_progress=False)
        return cls(model, len(flat.ids.lengths), flat)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text for ``query`` (zeros when no term is known)."""
        stop = stopwords()  # function and question words only add noise to a query
        terms = [t for t in dict.fromkeys(search_terms(query)) if t in self._model.vocab_dict and t not in stop]
        if not terms:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(terms), dtype=np.float32)

    def document_frequencies(self) -> dict[str, int]:
        """How many texts contain each known term (read off the sparse score matrix)."""
        if self._df is None:
            indptr = np.asarray(self._model.scores["indptr"])
            counts = np.diff(indptr)
            self._df = {t: int(counts[i]) for t, i in self._model.vocab_dict.items() if t}
        return self._df

    def save(self, folder: Path) -> None:
        """Write the index into ``folder``, with the terms it was built from."""
        self._model.save(str(folder), show_progress=False)
        if self.terms is not None:
            np.save(folder / TERM_IDS, self.terms.ids.ids)
            np.save(folder / TERM_LENGTHS, self.terms.ids.lengths)
            (folder / TERM_VOCAB).write_text(json.dumps(list(self.terms.vocab), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, size: int) -> "Bm25":
        """Read an index written by ``save``."""
        terms = None
        if (folder / TERM_IDS).is_file():
            vocab = json.loads((folder / TERM_VOCAB).read_text(encoding="utf-8"))
            terms = FlatCorpus(FlatIds(np.load(folder / TERM_IDS), np.load(folder / TERM_LENGTHS)),
                               {t: i for i, t in enumerate(vocab)})
        return cls(bm25s.BM25.load(str(folder), show_progress=False), size, terms)


def terms_of(text: str) -> list[str]:
    """The terms a text is indexed by (never empty: bm25s needs a term per document)."""
    return search_terms(text) or [""]


@dataclass
class FlatIds:
    """Every document's term ids end to end, and each document's length."""

    ids: np.ndarray
    lengths: np.ndarray


@dataclass
class FlatCorpus:
    """A corpus in the form bm25s's ``index`` accepts (``ids`` and ``vocab``), ids kept flat."""

    ids: FlatIds
    vocab: dict[str, int]

    @classmethod
    def of(cls, terms: list[list[str]]) -> "FlatCorpus":
        """Number the terms in order of first appearance; one pass over all of them."""
        flat = list(chain.from_iterable(terms))
        vocab = {t: i for i, t in enumerate(dict.fromkeys(flat))}
        ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        return cls(FlatIds(ids, lengths), vocab)

    @classmethod
    def joined(cls, pieces: list["TermRows"]) -> "FlatCorpus":
        """The documents of ``pieces`` end to end, with one numbering of the terms that occur in them.

        Rows kept from an earlier corpus are copied as ids, not re-split: this is what lets a
        change to one document cost about that document. Term numbers differ from ``of``'s;
        scores do not depend on them.
        """
        words: dict[str, int] = {}  # every term of every piece, in one id space
        parts, lengths = [], []
        remaps: dict[int, np.ndarray] = {}  # one renumbering per source corpus, not per piece
        starts: dict[int, np.ndarray] = {}  # where each source's documents start in its ids
        for piece in pieces:
            if piece.source is None:
                part = cls.of(piece.new_terms)
                source_vocab, ids, piece_lengths = part.vocab, part.ids.ids, part.ids.lengths
            else:
                source_vocab = piece.source.vocab
                if id(piece.source) not in starts:
                    starts[id(piece.source)] = np.concatenate([[0], np.cumsum(piece.source.ids.lengths)])
                offsets = starts[id(piece.source)]
                ids = piece.source.ids.ids[offsets[piece.start]:offsets[piece.stop]]
                piece_lengths = piece.source.ids.lengths[piece.start:piece.stop]
            key = id(piece.source) if piece.source is not None else -len(parts) - 1
            if key not in remaps:
                remaps[key] = np.fromiter((words.setdefault(t, len(words)) for t in source_vocab), dtype=np.int64,
                                          count=len(source_vocab))
            remap = remaps[key]
            parts.append(remap[ids] if len(ids) else ids)
            lengths.append(piece_lengths)
        union = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        # The terms that still occur (a deleted document's own terms drop out); counted, not sorted.
        order = np.flatnonzero(np.bincount(union, minlength=len(words)))
        renumber = np.full(len(words), -1, dtype=np.int64)
        renumber[order] = np.arange(len(order))
        names = list(words)
        vocab = {names[i]: k for k, i in enumerate(order.tolist())}
        return cls(FlatIds(renumber[union], np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)), vocab)


@dataclass
class TermRows:
    """Documents for ``FlatCorpus.joined``: rows ``start:stop`` of ``source``, or freshly split ``new_terms``."""

    source: FlatCorpus | None = None
    start: int = 0
    stop: int = 0
    new_terms: list[list[str]] = field(default_factory=list)


class VectorisedBM25(bm25s.BM25):
    """bm25s with its index built by numpy over all documents at once.

    bm25s builds its score matrix with a Python loop and a ``Counter`` per document
    (101 s at a million chunks here); ``build_index_from_ids`` is the hook its docs offer
    for building it another way. This one computes the same Lucene BM25 matrix from the
    flat ids (``tests/test_lexical.py`` checks it against bm25s's own); scoring, saving and
    loading stay bm25s's.
    """

    def build_index_from_ids(self, unique_token_ids, corpus_token_ids, show_progress=True, leave_progress=False):
        """The CSC score matrix (documents by term) from ``FlatIds``; other inputs go to bm25s."""
        if not isinstance(corpus_token_ids, FlatIds) or self.method != "lucene" or self.idf_method not in (None, "lucene"):
            return super().build_index_from_ids(unique_token_ids, corpus_token_ids, show_progress, leave_progress)
        lengths = corpus_token_ids.lengths
        n_docs, n_vocab = len(lengths), len(unique_token_ids)
        docs = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        # Term frequencies as a documents-by-terms matrix in CSC order (scipy's conversion sums
        # repeated (document, term) pairs and sorts each term's documents, without a full sort).
        counts = sparse.coo_matrix((np.ones(len(docs), dtype=np.int64), (docs, corpus_token_ids.ids)),
                                   shape=(n_docs, n_vocab)).tocsc()
        counts.sum_duplicates()
        df = np.diff(counts.indptr)
        term = np.repeat(np.arange(n_vocab, dtype=np.int64), df)
        doc, tf = counts.indices.astype(np.int64), counts.data
        # The same arithmetic as bm25s (idf stored as float32, the rest in float64).
        idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(self.dtype)
        tf = tf.astype(self.dtype)
        tfc = tf / (self.k1 * ((1 - self.b) + self.b * lengths[doc] / lengths.mean()) + tf)
        indptr = np.concatenate([[0], np.cumsum(df)]).astype(self.int_dtype)
        self.nonoccurrence_array = None
        return {"data": (idf[term] * tfc).astype(self.dtype), "indices": doc.astype(self.int_dtype),
                "indptr": indptr, "num_docs": n_docs}


# ------------------------------------------------------------------ BM25 over segments

K1, B = 1.5, 0.75  # bm25s's defaults, which ``Bm25`` uses


@dataclass
class TermStats:
    """What BM25's corpus statistics need from some texts: document frequencies and total length."""

    df: dict[str, int]
    length: int

    @classmethod
    def sum(cls, parts) -> "TermStats":
        df: dict[str, int] = {}
        length = 0
        for p in parts:
            for t, n in p.df.items():
                df[t] = df.get(t, 0) + n
            length += p.length
        return cls(df, length)


class Postings:
    """The term frequencies of some texts (one segment's chunks or sentences), term by term."""

    def __init__(self, flat: FlatCorpus):
        self.flat = flat
        self.vocab = flat.vocab
        lengths = np.asarray(flat.ids.lengths, dtype=np.int64)
        self.n = len(lengths)
        # The flat ids already are a texts-by-terms CSR matrix (duplicates not yet summed): scipy
        # turns it into term-major order by a counting pass, without the (text, term) pairs of
        # int64s a COO matrix needed (several GB at a million chunks while a view loaded).
        count = np.uint16 if lengths.max(initial=0) < 2**16 else np.uint32  # a term's count in one text fits
        texts = sparse.csr_matrix((np.ones(len(flat.ids.ids), dtype=count), np.asarray(flat.ids.ids),
                                   np.concatenate([[0], np.cumsum(lengths)])), shape=(self.n, len(self.vocab)))
        counts = texts.tocsc()
        del texts
        counts.sum_duplicates()  # a term twice in one text: one posting of frequency 2
        # Narrow types: postings are most of a view's BM25 memory (20 bytes each as int64 rows,
        # float32 frequencies and a stored text length; 6 bytes now). The scores do not change:
        # rows and counts are exact in these types, and a text's length is read from ``lengths``.
        self.indptr = counts.indptr.astype(np.int64)
        self.rows = counts.indices.astype(np.int32 if self.n < 2**31 else np.int64, copy=False)
        self.tf = counts.data
        self.lengths = lengths
        self._offsets: np.ndarray | None = None
        self._whole: TermStats | None = None

    def whole_stats(self) -> TermStats:
        """``stats`` of every text (computed once: postings never change)."""
        if self._whole is None:
            self._whole = self.stats(0, self.n)
        return self._whole

    def at(self, term: str, local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """For local rows ``local`` (others ignored): (positions in ``local`` of the texts holding
        ``term``, their term frequencies, their lengths), by binary search in the term's postings."""
        i = self.vocab.get(term)
        if i is None:
            return None
        a, b = self.indptr[i], self.indptr[i + 1]
        if a == b:
            return None
        rows = self.rows[a:b]  # increasing: column order of a canonical CSC matrix
        at = np.minimum(np.searchsorted(rows, local), b - a - 1)
        which = np.flatnonzero((local >= 0) & (local < self.n) & (rows[at] == local))
        return which, self.tf[a:b][at[which]], self.lengths[local[which]]

    def of(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(local rows, term frequencies, text lengths) of the texts holding ``term``."""
        i = self.vocab.get(term)
        if i is None:
            return None
        a, b = self.indptr[i], self.indptr[i + 1]
        rows = self.rows[a:b]
        return rows, self.tf[a:b], self.lengths[rows]

    def stats(self, start: int, stop: int) -> TermStats:
        """Document frequencies and total length of texts ``start:stop``."""
        if start == 0 and stop == self.n:
            df = np.diff(self.indptr)
            names = list(self.vocab)
            return TermStats({names[i]: int(df[i]) for i in np.flatnonzero(df)}, int(self.lengths.sum()))
        if self._offsets is None:
            self._offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        a, b = self._offsets[start], self._offsets[stop]
        ids = np.asarray(self.flat.ids.ids[a:b], dtype=np.int64)
        row = np.repeat(np.arange(start, stop, dtype=np.int64), self.lengths[start:stop])
        pairs = np.unique(row * len(self.vocab) + ids)
        terms, n = np.unique(pairs % len(self.vocab), return_counts=True)
        names = list(self.vocab) if len(terms) else []
        return TermStats({names[t]: int(c) for t, c in zip(terms, n)}, int(self.lengths[start:stop].sum()))


def _term_scores(tf: np.ndarray, dl: np.ndarray, avgdl, idf: np.ndarray) -> np.ndarray:
    """One term's BM25 contribution to each text holding it, as float32."""
    # tf / (k1 * ((1 - b) + b * dl / avgdl) + tf), the same operations in the same
    # order, in place (fewer temporaries: this is most of a query's BM25 time).
    norm = dl * B
    norm /= avgdl
    norm += 1 - B
    norm *= K1
    norm += tf
    np.divide(tf, norm, out=norm)
    norm *= idf
    return norm.astype(np.float32)


class SegmentedBm25:
    """BM25 over the live texts of several segments, scored at query time for the query's terms.

    The corpus statistics (``df``, the number of texts, their total length) are those of the
    live texts only, kept exact on every change; a text's score is Lucene BM25 computed with
    the arithmetic of ``VectorisedBM25`` (idf as float32, the rest in float64, each term's
    contribution rounded to float32 and summed in query-term order), so the same corpus
    scores the same however its segments are cut.
    """

    def __init__(self, parts: list[tuple[Postings, int]], inv: np.ndarray, size: int, df: dict[str, int],
                 total_length: int, layout=None, kind: str = "chunks"):
        self.parts = parts  # each segment's postings with its first physical row
        self.inv = inv  # physical row -> view row (-1: tombstoned)
        self.size = size
        self.df = df
        self.total_length = total_length
        self._layout, self._kind = layout, kind
        self._frequencies: dict[str, int] | None = None
        # Whether each segment has rows left out of the view (tombstoned documents).
        self.dead = [bool(np.any(inv[base:base + p.n] < 0)) for p, base in parts]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every live text for ``query`` (zeros when no term is known)."""
        out = np.zeros(self.size, dtype=np.float32)
        terms = self._known_terms(query)
        if not terms:
            return out
        avgdl = self._average_length()
        for term in terms:
            idf = self._idf(term)
            for k, (postings, base) in enumerate(self.parts):
                found = postings.of(term)
                if found is None:
                    continue
                rows, tf, dl = found
                view = self.inv[rows + np.int64(base)]  # int64: rows may be int32
                if self.dead[k]:  # a segment with tombstones: drop their postings
                    keep = view >= 0
                    view, tf, dl = view[keep], tf[keep], dl[keep]
                np.add.at(out, view, _term_scores(tf, dl, avgdl, idf))  # rows are distinct: one add each
        return out

    def scores_of(self, query: str, rows) -> np.ndarray:
        """``scores(query)[rows]`` for live view ``rows``, computed for those rows only: ranking
        ~50 candidate sentences need not score all of them (3.75M at 1M chunks, and a common
        term's postings there are millions long)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        terms = self._known_terms(query)
        if not terms or not len(rows):
            return out
        avgdl = self._average_length()
        physical = self._physical_rows()[rows]
        for term in terms:
            idf = self._idf(term)
            for postings, base in self.parts:
                found = postings.at(term, physical - np.int64(base))
                if found is not None:
                    which, tf, dl = found
                    out[which] += _term_scores(tf, dl, avgdl, idf)  # the same float32 sums, in the same order
        return out

    def _known_terms(self, query: str) -> list[str]:
        stop = stopwords()
        return [t for t in dict.fromkeys(search_terms(query)) if self.df.get(t) and t not in stop]

    def _average_length(self):
        return np.array(self.total_length, dtype=np.int64) / self.size  # as lengths.mean(): exact for int sums

    def _idf(self, term: str) -> np.ndarray:
        df = self.df[term]
        return np.log(1 + (np.array([self.size], dtype=np.int64) - df + 0.5) / (df + 0.5)).astype(np.float32)

    def _physical_rows(self) -> np.ndarray:
        """View row -> physical row (the layout's, or, for one block, the inverse of ``inv``)."""
        if self._layout is not None:
            return self._layout.chunk_rows if self._kind == "chunks" else self._layout.sentence_rows
        live = np.flatnonzero(self.inv >= 0)
        out = np.empty(self.size, dtype=np.int64)
        out[self.inv[live]] = live
        return out

    def document_frequencies(self) -> dict[str, int]:
        """How many live texts contain each term."""
        if self._frequencies is None:
            self._frequencies = {t: n for t, n in self.df.items() if t and n}
        return self._frequencies

    @property
    def terms(self) -> FlatCorpus:
        """The terms of every live text in view order (what a later full build reuses)."""
        layout = self._layout
        attr = "chunk_terms" if self._kind == "chunks" else "sentence_terms"
        a, b = (0, 1) if self._kind == "chunks" else (2, 3)
        if len(layout.segments) == 1 and len(layout.live[0]) == len(layout.segments[0].documents):
            seg = layout.segments[0]
            if list(seg.documents) == layout.order:
                return getattr(seg, attr)
        pieces: list[TermRows] = []
        for d in layout.order:
            seg = layout.segments[layout.where[d]]
            start, stop = seg.spans[d][a], seg.spans[d][b]
            source = getattr(seg, attr)
            if pieces and pieces[-1].source is source and pieces[-1].stop == start:
                pieces[-1].stop = stop
            else:
                pieces.append(TermRows(source, start, stop))
        return FlatCorpus.joined(pieces)

    @classmethod
    def from_flat(cls, flat: FlatCorpus) -> "SegmentedBm25":
        """BM25 over one block of texts (tests and tools)."""
        p = Postings(flat)
        stats = p.stats(0, p.n)
        return cls([(p, 0)], np.arange(p.n, dtype=np.int64), p.n, stats.df, stats.length)


def save_terms(flat: FlatCorpus, folder: Path) -> None:
    """Write the terms of a block of texts (ids end to end, lengths, vocabulary)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / TERM_IDS, np.asarray(flat.ids.ids, dtype=np.int64))
    np.save(folder / TERM_LENGTHS, np.asarray(flat.ids.lengths, dtype=np.int64))
    (folder / TERM_VOCAB).write_text(json.dumps(list(flat.vocab), ensure_ascii=False), encoding="utf-8")


def load_terms(folder: Path) -> FlatCorpus:
    """Read what ``save_terms`` wrote."""
    vocab = json.loads((folder / TERM_VOCAB).read_text(encoding="utf-8"))
    return FlatCorpus(FlatIds(np.load(folder / TERM_IDS), np.load(folder / TERM_LENGTHS)),
                      {t: i for i, t in enumerate(vocab)})
