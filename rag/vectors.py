"""The one home of FAISS: inner-product search over unit vectors, exact or approximate by size.

Below ``EXACT_MAX`` vectors the index is exact (``IndexFlatIP``). Above it, exact search
scans every vector for every query (about 20 ms per query at 100k chunks and 0.2-0.4 s at
1M on a 2-core machine), so the index is an inverted file (``IndexIVFFlat``): k-means
cells, of which a query scans the ``NPROBE`` nearest. Measured with ``python -m bench run``
(docs/benchmarks.md): recall@10 against exact search stays near 0.98 from 100k to 1M with
about sqrt(n) cells and 64 probes, for a few milliseconds per query. HNSW was as fast and
as exact, but builds 30-100x slower (41 s at 100k, minutes at 1M) and cannot delete, and
the service rebuilds the index on every document added or deleted.

The IVF index keeps a direct map, so ``reconstruct_n`` still returns every stored vector
(rebuilds reuse them). ``load`` re-applies the search parameter (``nprobe``) from the
index's own shape: faiss 1.15 writes it into the file, but the policy should not depend
on that, and an index saved under an older policy gets the current one.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

# Exact search up to this many vectors; measured crossover, see the module docstring.
EXACT_MAX = 50_000
# Cells probed per query; recall@10 ~0.98 with sqrt(n) cells at 100k-1M (bench scale runs).
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
    if isinstance(index, faiss.IndexIVF):
        return f"ivf nlist={index.nlist} nprobe={index.nprobe}"
    return "flat"


def search(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the ``k`` nearest rows, best first; ids are -1 past the end."""
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    scores, ids = index.search(q, min(k, index.ntotal) or 1)
    return scores[0], ids[0]


def save(index: faiss.Index, path: Path) -> None:
    """Write the index to one file."""
    faiss.write_index(index, str(path))


def load(path: Path) -> faiss.Index:
    """Read an index written by ``save``, with its search parameter set."""
    index = faiss.read_index(str(path))
    _tune(index)
    return index
