"""Natural batching of concurrent questions: those that arrive while the model runs share its next run.

A server answers each request on its own thread, and the embedder runs one model call at a
time (concurrent runs oversubscribe the cores). Without batching, 32 waiting questions queue
for 32 runs; with it, the questions that queued during one run are embedded together in the
next: ~9 ms a question in runs of 16 against 13-16 ms alone (``DEFAULT_MAX_BATCH``). There is
no waiting window: a lone question runs at once, so an idle server answers as fast as before.

One caller at a time leads: it takes the oldest queued questions (its own first), runs them,
hands every caller its rows, then passes the lead to the oldest caller still waiting. Padding
a short question to the longest in its batch changes its vector by at most ~4e-8 (e5-small,
onnxruntime; ``tests/test_query_batcher_model.py``), so a batched question ranks as it would alone.

Only short query lists are batched. Passages (indexing), progress bars and long lists go
straight to the embedder, so an index is built exactly as without the batcher.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from rag.indexing.embedder import Embedder

# Questions per model run. e5-small on onnxruntime, 2 cores, the load test's questions (20 tokens),
# one calling thread, best of several runs on a busy machine: a run of 1 takes 13-16 ms; per
# question, runs of 8 take ~10 ms, of 16 ~9 ms, of 32 ~8 ms. Past 16 a question saves ~1 ms, but a
# full run takes ~255 ms instead of ~140: a question that arrives just after one starts would wait
# out most of a 0.3 s latency budget before its own run.
DEFAULT_MAX_BATCH = 16


class _Request:
    """One caller's texts and what came of them: vectors, an error, or the turn to lead."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None
        self.leads = False
        self._woken = threading.Event()

    def finish(self, vectors: np.ndarray | None, error: BaseException | None) -> None:
        """Store the outcome and wake the caller."""
        self.vectors, self.error = vectors, error
        self._woken.set()

    def hand_lead(self) -> None:
        """Wake the caller to run the next batch."""
        self.leads = True
        self._woken.set()

    def wait(self) -> bool:
        """Block until woken; True when woken to lead rather than with an outcome."""
        self._woken.wait()
        return self.leads

    def outcome(self) -> np.ndarray:
        """The vectors, or the batch's error raised in this caller's thread."""
        if self.error is not None:
            raise self.error
        return self.vectors


class QueryBatcher:
    """An ``Embedder`` that embeds the short query lists of concurrent callers together, one model run at a time."""

    def __init__(self, embedder: Embedder, max_batch: int = DEFAULT_MAX_BATCH):
        self._embedder = embedder
        # One run for the whole batch: ``OnnxEmbedder.encode`` would split it into its indexing batches.
        self._run_batch = getattr(embedder, "encode_batch", None) or embedder.encode
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self.max_batch = max_batch
        self._queue: deque[_Request] = deque()
        self._state = threading.Lock()  # guards the queue and the lead, never held during a run
        self._leading = False

    def encode(self, texts: list[str], is_query: bool, progress: bool = False) -> np.ndarray:
        """Unit vectors for ``texts``, from one model run shared with other callers' questions when short."""
        if progress or not is_query or not texts or len(texts) > self.max_batch:
            return self._embedder.encode(texts, is_query, progress)
        request = _Request(list(texts))
        if self._enqueue(request) or request.wait():
            self._lead()
        return request.outcome()

    def count_tokens(self, text: str) -> int:
        """The wrapped model's token count of ``text`` (characters when it cannot count)."""
        count = getattr(self._embedder, "count_tokens", None)
        return count(text) if count is not None else len(text)

    def _enqueue(self, request: _Request) -> bool:
        """Queue ``request``; True when nobody leads, so its caller must."""
        with self._state:
            self._queue.append(request)
            if self._leading:
                return False
            self._leading = True
            return True

    def _lead(self) -> None:
        """Run the oldest queued requests (the leader's own among them), then pass the lead on."""
        try:
            self._run(self._take())
        finally:
            self._hand_over()

    def _take(self) -> list[_Request]:
        """The oldest queued requests whose texts fit in one batch (at least one)."""
        batch: list[_Request] = []
        size = 0
        with self._state:
            while self._queue and (not batch or size + len(self._queue[0].texts) <= self.max_batch):
                request = self._queue.popleft()
                batch.append(request)
                size += len(request.texts)
        return batch

    def _run(self, batch: list[_Request]) -> None:
        """One model run for every text of ``batch``; each request gets its rows, or the error."""
        try:
            vectors = self._run_batch([t for r in batch for t in r.texts], True)
        except BaseException as exc:  # anything, even an interrupt: no caller may wait forever
            for request in batch:
                request.finish(None, exc)
            return
        start = 0
        for request in batch:
            end = start + len(request.texts)
            request.finish(vectors[start:end].copy(), None)
            start = end

    def _hand_over(self) -> None:
        """Wake the oldest waiting caller to lead next, or stop leading when nobody waits."""
        with self._state:
            if not self._queue:
                self._leading = False
                return
            successor = self._queue[0]  # only the leader takes from the queue, so it stays first
        successor.hand_lead()
