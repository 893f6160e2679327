"""The query batcher: concurrent questions share model runs, each caller gets its own rows.

A fake model stands in for e5: the hash embedder's vectors, slowly, with every run recorded.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from rag.indexing.embedder import HashEmbedder
from rag.indexing.query_batcher import QueryBatcher

WAIT_S = 10  # a bound on every wait, so a broken batcher fails instead of hanging the suite


class SlowModel:
    """Hash vectors after a delay; records each run and refuses two at once, as the real model's lock would."""

    def __init__(self, delay_s: float = 0.05, fail_on: str | None = None):
        self._hash = HashEmbedder()
        self.model_id, self.dim = self._hash.model_id, self._hash.dim
        self.delay_s, self.fail_on = delay_s, fail_on
        self.runs: list[list[str]] = []  # texts of each batched run
        self.direct: list[tuple[int, bool, bool]] = []  # (texts, is_query, progress) of each plain encode
        self.running = threading.Event()  # set once a run has started
        self.gate = threading.Event()  # a run holds here until the test opens it
        self.gate.set()
        self._busy = threading.Lock()

    def encode_batch(self, texts: list[str], is_query: bool) -> np.ndarray:
        assert self._busy.acquire(blocking=False), "two model runs at once"
        try:
            self.runs.append(list(texts))
            self.running.set()
            self.gate.wait(WAIT_S)
            time.sleep(self.delay_s)
            if self.fail_on in texts:
                raise RuntimeError("model failed")
            return self._hash.encode(texts, is_query)
        finally:
            self._busy.release()

    def encode(self, texts: list[str], is_query: bool, progress: bool = False) -> np.ndarray:
        self.direct.append((len(texts), is_query, progress))
        return self._hash.encode(texts, is_query)


def concurrently(batcher: QueryBatcher, questions: list[list[str]]) -> list[np.ndarray | BaseException]:
    """Each list of questions encoded on its own thread, all released at once; vectors or the error, in order."""
    results: list[np.ndarray | BaseException | None] = [None] * len(questions)
    barrier = threading.Barrier(len(questions))

    def ask(i: int) -> None:
        barrier.wait()
        try:
            results[i] = batcher.encode(questions[i], is_query=True)
        except BaseException as exc:
            results[i] = exc

    # Daemons, joined against one deadline: a broken batcher fails the test instead of hanging the run.
    threads = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(len(questions))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + WAIT_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a caller is still waiting"
    return results


def wait_for_queue(batcher: QueryBatcher, size: int) -> None:
    """Until ``size`` callers are queued behind the running batch."""
    deadline = time.monotonic() + WAIT_S
    while len(batcher._queue) < size:
        assert time.monotonic() < deadline, "callers did not queue"
        time.sleep(0.005)


def queued_behind_a_running_question(batcher: QueryBatcher, model, questions: list[list[str]]) -> list:
    """Hold the model on a first question, queue ``questions`` from their own threads meanwhile,
    then let it go: each caller's vectors or error, in order."""
    first = threading.Thread(target=batcher.encode, args=(["先到的问题"], True), daemon=True)
    first.start()
    assert model.running.wait(WAIT_S)
    results: list = []
    callers = threading.Thread(target=lambda: results.extend(concurrently(batcher, questions)), daemon=True)
    callers.start()
    wait_for_queue(batcher, len(questions))
    model.gate.set()
    callers.join(WAIT_S)
    first.join(WAIT_S)
    assert len(results) == len(questions), "a caller is still waiting"
    return results


def test_concurrent_questions_get_their_own_vectors_from_fewer_runs():
    model = SlowModel()
    batcher = QueryBatcher(model, max_batch=16)
    questions = [[f"问题{i}：干细胞剂量是多少？"] for i in range(16)]
    results = concurrently(batcher, questions)
    for texts, vectors in zip(questions, results):
        assert np.array_equal(vectors, HashEmbedder().encode(texts, is_query=True))
    assert len(model.runs) < len(questions) // 2
    assert sorted(t for run in model.runs for t in run) == sorted(t for texts in questions for t in texts)
    assert not model.direct


def test_a_lone_question_runs_at_once_and_leaves_no_one_leading():
    model = SlowModel(delay_s=0)
    batcher = QueryBatcher(model)
    for question in ("第一个问题", "第二个问题"):
        assert np.array_equal(batcher.encode([question], is_query=True), HashEmbedder().encode([question], True))
    assert model.runs == [["第一个问题"], ["第二个问题"]]
    assert not batcher._leading and not batcher._queue


def test_questions_queued_during_a_run_share_the_next_one_up_to_the_cap():
    model = SlowModel(delay_s=0)
    model.gate.clear()
    batcher = QueryBatcher(model, max_batch=4)
    questions = [[f"问题{i}", f"追问{i}"] if i % 3 == 0 else [f"问题{i}"] for i in range(7)]  # 10 texts
    results = queued_behind_a_running_question(batcher, model, questions)
    assert model.runs[0] == ["先到的问题"]
    assert all(len(run) <= 4 for run in model.runs) and len(model.runs) <= 1 + 4
    for texts, vectors in zip(questions, results):  # a caller's rows come back in its order
        assert np.array_equal(vectors, HashEmbedder().encode(texts, is_query=True))


def test_an_error_reaches_every_caller_of_the_failed_run_and_the_batcher_recovers():
    model = SlowModel(delay_s=0, fail_on="坏问题")
    model.gate.clear()
    batcher = QueryBatcher(model)
    questions = [["坏问题"]] + [[f"问题{i}"] for i in range(5)]
    results = queued_behind_a_running_question(batcher, model, questions)
    assert len(model.runs) == 2  # the first question alone, then every queued one together
    assert all(isinstance(r, RuntimeError) and str(r) == "model failed" for r in results)
    assert np.array_equal(batcher.encode(["问题0"], is_query=True), HashEmbedder().encode(["问题0"], True))


@pytest.mark.parametrize("texts, is_query, progress", [
    (["一段文字"], False, False),  # passages: indexing never goes through the batch
    (["问题"], True, True),  # a progress bar means a long job
    ([f"问题{i}" for i in range(17)], True, False),  # more than one batch holds
    ([], True, False),
])
def test_passages_long_lists_and_progress_go_straight_to_the_model(texts, is_query, progress):
    model = SlowModel(delay_s=0)
    vectors = QueryBatcher(model, max_batch=16).encode(texts, is_query, progress)
    assert model.direct == [(len(texts), is_query, progress)] and not model.runs
    assert np.array_equal(vectors, HashEmbedder().encode(texts, is_query))


def test_a_model_without_a_batch_call_is_batched_through_its_encode():
    batcher = QueryBatcher(HashEmbedder())
    results = concurrently(batcher, [[f"问题{i}"] for i in range(8)])
    for i, vectors in enumerate(results):
        assert np.array_equal(vectors, HashEmbedder().encode([f"问题{i}"], is_query=True))
    assert (batcher.model_id, batcher.dim) == (HashEmbedder().model_id, HashEmbedder().dim)


def test_the_opened_pipeline_batches_questions(tmp_path, monkeypatch):
    from rag import pipeline as pipeline_mod
    from rag.config import Settings

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "review.txt").write_text("间充质干细胞治疗中风。\n随访了两年。\n", encoding="utf-8")
    monkeypatch.setattr(pipeline_mod, "load_embedder", lambda settings, serving=False: HashEmbedder())
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                        embedding_model="hash-test")
    opened = pipeline_mod.Pipeline.open(settings, progress=False)
    assert isinstance(opened.embedder, QueryBatcher)
    assert opened.search("随访了多久？")
