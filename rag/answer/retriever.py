"""Hybrid retrieval: BM25 over jieba terms fused with dense FAISS hits by reciprocal rank.

No LangChain here: the service's hot path does not import it. ``rag.langchain_edge`` wraps
this retrieval (and the whole answer) for LangChain users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rag.indexing import vectors
from rag.config import RetrievalParams
from rag.indexing.embedder import Embedder
from rag.indexing.index import Index

# How deep each list is read before fusing: deep enough that a chunk ranked well by one
# method and modestly by the other still gets both contributions.
CANDIDATE_DEPTH = 50


@dataclass(frozen=True)
class ChunkHit:
    """One retrieved chunk with every score that ranked it."""

    chunk: int
    score: float  # fused
    dense: float
    bm25: float
    dense_rank: int | None
    bm25_rank: int | None


@dataclass(frozen=True)
class Retrieval:
    """The hits of one query, and the query vector (reused to score sentences)."""

    query: str
    query_vector: np.ndarray
    hits: list[ChunkHit]
    # How far the best dense score stands above the mean of the CANDIDATE_DEPTH best: a question
    # the documents are about singles some passages out; an off-topic one finds all alike.
    clarity: float = 0.0
    # The documents the request was scoped to (None: all); what selection may add must lie in them.
    documents: frozenset[str] | None = None


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, highest first, ties to the lower index.

    The same as ``np.argsort(-scores, kind="stable")[:k]``, by selection instead of a full
    sort: at a million chunks the sort took 120 ms a question, the selection a few.
    ``[0.5, 2.0, 0.5, 1.0]``, k=3 -> ``[1, 3, 0]``.
    """
    n = len(scores)
    if k >= n:
        return np.argsort(-scores, kind="stable")
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(scores, n - k)[n - k]  # the k-th highest value
    above = np.flatnonzero(scores > kth)
    ties = np.flatnonzero(scores == kth)[: k - len(above)]
    picked = np.concatenate([above, ties])
    return picked[np.argsort(-scores[picked], kind="stable")]


def retrieve(index: Index, embedder: Embedder, query: str, params: RetrievalParams) -> Retrieval:
    """The ``params.top_k`` chunks for ``query`` by weighted reciprocal-rank fusion.

    A weight of 0 turns a method off (BM25-only or dense-only retrieval).
    """
    top_k, rrf_k, dense_weight, bm25_weight = params.top_k, params.rrf_k, params.dense_weight, params.bm25_weight
    qv = embedder.encode([query], is_query=True)[0]
    allowed = None if params.documents is None else scoped_chunks(index, params.documents)
    n = len(index.chunks) if allowed is None else len(allowed)
    if n == 0:
        return Retrieval(query, qv, [], 0.0, params.documents)
    depth = min(n, max(CANDIDATE_DEPTH, top_k))
    dense_scores, dense_ids = vectors.search(index.chunk_vectors, qv, depth, allowed)
    bm25_all = index.chunk_bm25.scores(query)
    if allowed is not None:
        outside = np.ones(len(bm25_all), dtype=bool)
        outside[allowed] = False
        bm25_all[outside] = 0.0

    fused: dict[int, float] = {}
    dense_rank: dict[int, int] = {}
    bm25_rank: dict[int, int] = {}
    if dense_weight > 0:
        for rank, cid in enumerate(int(i) for i in dense_ids if i >= 0):
            dense_rank[cid] = rank
            fused[cid] = fused.get(cid, 0.0) + dense_weight / (rrf_k + rank + 1)
    if bm25_weight > 0:
        order = top_indices(bm25_all, depth)
        for rank, cid in enumerate(int(i) for i in order if bm25_all[i] > 0):
            bm25_rank[cid] = rank
            fused[cid] = fused.get(cid, 0.0) + bm25_weight / (rrf_k + rank + 1)

    dense_by_id = {int(i): float(s) for s, i in zip(dense_scores, dense_ids) if i >= 0}
    ranked = sorted(fused, key=lambda c: (-fused[c], c))[:top_k]
    hits = [
        ChunkHit(
            chunk=c,
            score=fused[c],
            dense=dense_by_id.get(c, float(index.sentence_vectors.dtype.type(0))),
            bm25=float(bm25_all[c]),
            dense_rank=dense_rank.get(c),
            bm25_rank=bm25_rank.get(c),
        )
        for c in ranked
    ]
    found = dense_scores[dense_ids >= 0]
    clarity = float(found[0] - found.mean()) if len(found) else 0.0
    return Retrieval(query, qv, hits, clarity, params.documents)


def scoped_chunks(index: Index, documents: frozenset[str]) -> np.ndarray:
    """Row ids of the chunks of ``documents`` (empty when none of them is indexed)."""
    doc_ids = index.memoised("chunk_doc_ids", lambda: np.array([c.doc_id for c in index.chunks], dtype=object))
    return np.flatnonzero(np.isin(doc_ids, list(documents)))
