"""The one home of BM25 (bm25s, sparse matrices): lexical scores over jieba search terms."""

from __future__ import annotations

import logging
from pathlib import Path

import bm25s
import numpy as np

from rag.segment import search_terms, stopwords

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build at DEBUG otherwise


class Bm25:
    """BM25 over a fixed list of texts, scored for every text at once."""

    def __init__(self, model: bm25s.BM25, size: int):
        self._model = model
        self.size = size
        self._df: dict[str, int] | None = None

    @classmethod
    def build(cls, texts: list[str]) -> "Bm25":
        """Index ``texts`` by their jieba search terms."""
        model = bm25s.BM25()
        model.index([search_terms(t) or [""] for t in texts], show_progress=False)
        return cls(model, len(texts))

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
        """Write the index into ``folder``."""
        self._model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> "Bm25":
        """Read an index written by ``save``."""
        return cls(bm25s.BM25.load(str(folder), show_progress=False), size)
