"""Synthetic Chinese corpora and vectors for the scale benchmarks, all seeded.

Texts recombine the review's own material: real sentences whose jieba words are partly
swapped for other words of the review (drawn by frequency), under real section headings.
At 1M chunks even jieba is too slow to run for a benchmark, so index-only runs draw the
chunks' BM25 terms directly from the review's search terms (same recombination, no text).

Vectors are seeded random unit vectors (dim 384, float32), NOT embeddings of the texts:
embedding a million chunks on this CPU takes hours. See ``VectorSpace`` for how they are
drawn so that recall against exact search means something.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "corpus" / "msc-neuro-review.zh.txt"
DIM = 384
INTRINSIC_DIM = 16
NOISE = 0.01  # per coordinate: about 0.2 of length in all 384 directions
_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)
_SENTENCE = re.compile(r"[^。！？；\n]+[。！？；]")


@dataclass(frozen=True)
class Material:
    """What the generator recombines: the review's sentences, headings and words."""

    sentences: tuple[tuple[str, ...], ...]  # jieba words of each sentence, punctuation kept
    headings: tuple[str, ...]
    words: tuple[str, ...]  # distinct content words
    word_p: np.ndarray  # their frequencies, normalised
    terms: tuple[str, ...]  # distinct BM25 search terms
    term_p: np.ndarray
    sentence_terms: tuple[tuple[int, ...], ...]  # search terms of each sentence, as ids into ``terms``


@lru_cache(maxsize=1)
def material() -> Material:
    """Cut the review once with the project's jieba (domain dictionary included)."""
    from rag.ingest.segment import cut, search_terms

    from rag.config import Settings

    text = REVIEW.read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    tail = re.compile(Settings().noncitable_pattern)  # the reposting site's tail is not material
    lines = lines[: next((i for i, ln in enumerate(lines) if tail.search(ln)), len(lines))]
    headings = tuple(ln for ln in lines if len(ln) <= 40 and ln[-1] not in "。！？；.:：" and "，" not in ln)
    raw = [m.group().strip() for ln in lines for m in _SENTENCE.finditer(ln) if len(m.group().strip()) >= 8]
    sentences = tuple(tuple(cut(s)) for s in raw)
    counts: dict[str, int] = {}
    for words in sentences:
        for w in words:
            if not _PUNCT.match(w):
                counts[w] = counts.get(w, 0) + 1
    words = tuple(counts)
    word_p = np.array([counts[w] for w in words], dtype=np.float64)
    term_counts: dict[str, int] = {}
    per_sentence = [search_terms(s) for s in raw]
    for ts in per_sentence:
        for t in ts:
            term_counts[t] = term_counts.get(t, 0) + 1
    terms = tuple(term_counts)
    term_id = {t: i for i, t in enumerate(terms)}
    term_p = np.array([term_counts[t] for t in terms], dtype=np.float64)
    return Material(
        sentences, headings or ("综述",), words, word_p / word_p.sum(), terms, term_p / term_p.sum(),
        tuple(tuple(term_id[t] for t in ts) for ts in per_sentence),
    )


def sentence(rng: np.random.Generator, swap: float = 0.3) -> str:
    """One recombined sentence: a real one with about ``swap`` of its words replaced."""
    m = material()
    words = list(m.sentences[rng.integers(len(m.sentences))])
    picks = rng.choice(len(m.words), size=len(words), p=m.word_p)
    out = [m.words[p] if not _PUNCT.match(w) and rng.random() < swap else w for w, p in zip(words, picks)]
    text = "".join(out)
    return text if text[-1] in "。！？；" else text + "。"


def documents(n_docs: int, sections: int = 6, sentences_per_section: int = 12, seed: int = 0) -> list[tuple[str, str]]:
    """``n_docs`` (name, text) documents of recombined sentences under real headings."""
    rng = np.random.default_rng(seed)
    m = material()
    docs = []
    for d in range(n_docs):
        parts = []
        for _ in range(sections):
            parts.append(m.headings[rng.integers(len(m.headings))])
            parts.append("".join(sentence(rng) for _ in range(sentences_per_section)))
        docs.append((f"synth-{seed}-{d:06d}.txt", "\n".join(parts) + "\n"))
    return docs


def term_chunks(n: int, seed: int = 0, swap: float = 0.3) -> list[list[str]]:
    """BM25 terms of ``n`` synthetic chunks (two or three recombined sentences each), without text.

    The same recombination as ``sentence``, done on search-term ids with numpy.
    """
    m = material()
    rng = np.random.default_rng(seed)
    terms = np.array(m.terms, dtype=object)
    lens = np.array([len(t) for t in m.sentence_terms])
    flat = np.concatenate([np.array(t, dtype=np.int64) for t in m.sentence_terms])
    offsets = np.concatenate([[0], np.cumsum(lens)])
    out: list[list[str]] = []
    batch = 20_000
    for start in range(0, n, batch):
        size = min(batch, n - start)
        per_chunk = rng.integers(2, 4, size=size)
        picks = rng.integers(len(m.sentence_terms), size=int(per_chunk.sum()))
        ids = np.concatenate([flat[offsets[p]:offsets[p + 1]] for p in picks])
        swap_mask = rng.random(ids.size) < swap
        ids[swap_mask] = rng.choice(len(m.terms), size=int(swap_mask.sum()), p=m.term_p)
        words = terms[ids]
        ends = np.cumsum(lens[picks])
        bounds = np.concatenate([[0], ends[np.cumsum(per_chunk) - 1]])
        out.extend(words[bounds[i]:bounds[i + 1]].tolist() for i in range(size))
    return out


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32."""
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class VectorSpace:
    """Seeded random unit vectors near a random ``INTRINSIC_DIM``-dimensional subspace of R^384.

    Text embeddings use far fewer directions than they have: their intrinsic dimension is
    low. Vectors drawn uniformly on a 16-dimensional sphere, turned into 384 dimensions by a
    random orthonormal map, plus a little isotropic noise, have nearest neighbours with a real
    margin, as embeddings do; uniform random 384-d vectors have none (every point is about
    equally far from every other), so no approximate index can do well on them.
    """

    def __init__(self, seed: int = 0, dim: int = DIM, intrinsic_dim: int = INTRINSIC_DIM, noise: float = NOISE):
        self.dim, self.noise = dim, noise
        rng = np.random.default_rng(seed)
        self._basis = np.linalg.qr(rng.standard_normal((dim, intrinsic_dim)))[0].astype(np.float32)
        self._rng = np.random.default_rng(seed + 1)

    def draw(self, n: int) -> np.ndarray:
        """``n`` new vectors, float32, unit length (made in slices to bound temporary memory)."""
        out = np.empty((n, self.dim), dtype=np.float32)
        for s in range(0, n, 100_000):
            e = min(n, s + 100_000)
            z = self._rng.standard_normal((e - s, self._basis.shape[1]), dtype=np.float32)
            z /= np.linalg.norm(z, axis=1, keepdims=True)
            out[s:e] = unit(z @ self._basis.T + self.noise * self._rng.standard_normal((e - s, self.dim), dtype=np.float32))
        return out

    def queries(self, stored: np.ndarray, n: int) -> np.ndarray:
        """Half perturbed copies of stored vectors, half fresh random draws."""
        half = n // 2
        near = stored[self._rng.integers(len(stored), size=half)]
        near = unit(near + 0.02 * self._rng.standard_normal(near.shape, dtype=np.float32))
        return np.vstack([near, self.draw(n - half)])


def dataset(n: int, n_queries: int, seed: int = 0, cache: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, queries, exact top-10 ids of each query) for ``n`` vectors, cached in ``cache`` if given.

    Several workers of one run need the same 1M vectors and their exact neighbours; drawing
    them and searching exhaustively once saves minutes.
    """
    files = None
    if cache:
        stem = Path(cache) / f"vectors-{n}-{n_queries}-{seed}"
        files = [stem.with_name(stem.name + f"-{part}.npy") for part in ("x", "q", "t")]
        if all(f.exists() for f in files):
            return tuple(np.load(f) for f in files)
    space = VectorSpace(seed)
    X = space.draw(n)
    Q = space.queries(X, n_queries)
    T = exact_top(X, Q, 10)
    if files:
        files[0].parent.mkdir(parents=True, exist_ok=True)
        for f, arr in zip(files, (X, Q, T)):
            np.save(f, arr)
    return X, Q, T


def exact_top(stored: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Ids of the exact ``k`` best inner products of each query (numpy, in slices)."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for s in range(0, len(stored), 200_000):
        scores = queries @ stored[s:s + 200_000].T
        part = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_s = np.hstack([best_s, np.take_along_axis(scores, part, 1)])
        best_i = np.hstack([best_i, part + s])
    order = np.argsort(-best_s, axis=1)[:, :k]
    return np.take_along_axis(best_i, order, 1)


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the exact top ``k`` found in the first ``k`` results."""
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))
