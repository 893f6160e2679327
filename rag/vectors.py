"""The one home of FAISS: exact inner-product search over unit vectors."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np


def build(vectors: np.ndarray) -> faiss.Index:
    """An exact inner-product index (cosine, since the vectors are unit length)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def search(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the ``k`` nearest rows, best first; ids are -1 past the end."""
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    scores, ids = index.search(q, min(k, index.ntotal) or 1)
    return scores[0], ids[0]


def save(index: faiss.Index, path: Path) -> None:
    """Write the index to one file."""
    faiss.write_index(index, str(path))


def load(path: Path) -> faiss.Index:
    """Read an index written by ``save``."""
    return faiss.read_index(str(path))
