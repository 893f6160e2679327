"""The one home of FAISS: inner-product search over unit vectors, exact or approximate by size.

Up to ``EXACT_MAX`` vectors the index is exact (``IndexFlatIP``). Exact search reads every
vector for every query: on the 2-core benchmark machine about 5 ms at 20k chunks, 22 ms at
100k and 230 ms at 1M. Above the threshold the index is an inverted file (``IndexIVFFlat``):
about sqrt(n) k-means cells, of which a query scans the ``NPROBE`` nearest. Measured with
``python -m bench run`` (docs/benchmarks.md, synthetic vectors): recall@10 against exact
search 1.000 at 20k, 0.997 at 100k and 0.988 at 1M, for 2, 4 and 13 ms per query. HNSW
(M=32) answered as fast and as exactly but built 30x slower (30 s at 100k, against 1 s)
and cannot delete, and the service rebuilds the index on every document added or deleted.
The threshold is where exact search starts to cost more than ~5 ms, a tenth of embedding
the question.

The IVF index keeps a direct map, so ``reconstruct_n`` still returns every stored vector
(rebuilds reuse them). ``load`` sets ``nprobe`` again from the index's shape: faiss 1.15.1's
``write_index`` keeps it (checked), but the policy should not depend on that, and an index
saved under an older policy gets the current one.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

# Exact search up to this many vectors; measured crossover, see the module docstring.
EXACT_MAX = 20_000
# Cells probed per query: recall@10 >= 0.98 with sqrt(n) cells from 20k to 1M vectors (32 probes
# gave 0.96 at 100k and 0.95 at 1M: too little margin for real embeddings, which may be harder).
NPROBE = 64
# k-means is trained on at most this many points per cell (seeded sample; faiss warns below 39).
TRAIN_POINTS_PER_CELL = 50
SEED = 1234


def build(vectors: np.ndarray, approximate: bool | None = None) -> faiss.Index:
    """An inner-product index (cosine, since the vectors are unit length).

    Exact below ``EXACT_MAX`` vectors, IVF above; ``approximate`` forces one or the other.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if approximate is None:
        approximate = n > EXACT_MAX
    if not approximate or n < 2:
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return index
    nlist = max(1, min(n // TRAIN_POINTS_PER_CELL, round(math.sqrt(n))))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = SEED
    sample = min(n, nlist * TRAIN_POINTS_PER_CELL)
    rows = np.sort(np.random.default_rng(SEED).choice(n, size=sample, replace=False))
    index.train(vectors[rows])
    index.add(vectors)
    index.make_direct_map()  # reconstruct / reconstruct_n by id
    _tune(index)
    return index


def _tune(index: faiss.Index) -> None:
    """Set the search parameter of an approximate index from its shape."""
    if isinstance(index, faiss.IndexIVF):
        index.nprobe = min(index.nlist, NPROBE)


def describe(index: faiss.Index) -> str:
    """``"flat"`` or ``"ivf nlist=316 nprobe=64"``: what kind of index this is (for reports)."""
    if hasattr(index, "describe"):  # an index's segments (rag.indexing.segments.ChunkVectors)
        return index.describe()
    if isinstance(index, faiss.IndexIVF):
        return f"ivf nlist={index.nlist} nprobe={index.nprobe}"
    return "flat"


def search(index: faiss.Index, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the ``k`` nearest rows, best first; ids are -1 past the end.

    With ``allowed`` (row ids), only those rows are searched: FAISS filters while it searches,
    so a question scoped to a few documents still gets its ``k`` best among them.
    """
    if hasattr(index, "search_rows"):  # an index's segments (rag.indexing.segments.ChunkVectors)
        return index.search_rows(query, k, allowed)
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    if allowed is None:
        scores, ids = index.search(q, min(k, index.ntotal) or 1)
        return scores[0], ids[0]
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    params = faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe) if isinstance(index, faiss.IndexIVF) \
        else faiss.SearchParameters(sel=selector)
    scores, ids = index.search(q, min(k, len(allowed)) or 1, params=params)
    return scores[0], ids[0]


def save(index: faiss.Index, path: Path) -> None:
    """Write the index to one file."""
    faiss.write_index(index, str(path))


def load(path: Path) -> faiss.Index:
    """Read an index written by ``save``, with its search parameter set."""
    index = faiss.read_index(str(path))
    _tune(index)
    return index
