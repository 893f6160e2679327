"""The model is shared batch by batch, questions first: indexing a document must not hold up answers."""

from __future__ import annotations

import threading
import time

import numpy as np

from rag.indexing.embedder import ModelTurns, OnnxEmbedder

RUN_S = 0.02


class SlowModel(OnnxEmbedder):
    """An OnnxEmbedder whose model run is a sleep that records what ran, and checks runs never overlap."""

    def __init__(self, batch_size: int = 1):
        self._turns = ModelTurns()
        self._batch_size = batch_size
        self._prefixes = {True: "query: ", False: "passage: "}
        self.dim = 4
        self.runs: list[str] = []
        self._inside = threading.Lock()

    def _lengths(self, texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    def _run(self, texts: list[str]) -> np.ndarray:
        assert self._inside.acquire(blocking=False), "two model runs overlapped"
        try:
            time.sleep(RUN_S)
            self.runs.extend(texts)
            return np.ones((len(texts), self.dim), dtype=np.float32) / 2
        finally:
            self._inside.release()


def test_model_turns_question_goes_between_passage_batches():
    model = SlowModel()
    passages = [f"段落{i}" for i in range(40)]
    indexing = threading.Thread(target=model.encode, args=(passages, False))
    indexing.start()
    time.sleep(5 * RUN_S)  # well into the passages
    started = time.perf_counter()
    model.encode(["问题？"], is_query=True)
    waited = time.perf_counter() - started
    indexing.join()
    position = model.runs.index("query: 问题？")
    assert position < len(passages) // 2, "the question waited for most of the document"
    assert waited < 10 * RUN_S
    assert len(model.runs) == len(passages) + 1


def test_model_turns_encode_batch_also_goes_first():
    model = SlowModel()
    indexing = threading.Thread(target=model.encode, args=([f"段落{i}" for i in range(30)], False))
    indexing.start()
    time.sleep(3 * RUN_S)
    model.encode_batch(["问一", "问二"], is_query=True)
    indexing.join()
    assert model.runs.index("query: 问一") < 15


def test_model_turns_passages_alone_run_in_order_and_complete():
    model = SlowModel(batch_size=4)
    vectors = model.encode([f"段落{i}" for i in range(10)], is_query=False)
    assert vectors.shape == (10, 4)
    assert len(model.runs) == 10


def test_model_turns_many_questions_never_overlap_and_all_finish():
    model = SlowModel()
    threads = [threading.Thread(target=model.encode, args=([f"问{i}"], True)) for i in range(8)]
    threads.append(threading.Thread(target=model.encode, args=([f"段落{i}" for i in range(8)], False)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert len(model.runs) == 16


class TwoSlotModel(SlowModel):
    """Two runs may overlap (one per core when indexing); it records how many ran at once."""

    def __init__(self):
        super().__init__()
        self._turns = ModelTurns(slots=2)
        self._count = threading.Lock()
        self.now = self.most = 0

    def _run(self, texts: list[str]) -> np.ndarray:
        with self._count:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(RUN_S)
        with self._count:
            self.now -= 1
            self.runs.extend(texts)
        return np.ones((len(texts), self.dim), dtype=np.float32) / 2


def test_model_turns_with_two_slots_runs_passage_batches_two_at_a_time_and_keeps_rows():
    model = TwoSlotModel()
    passages = [f"段落{i}" for i in range(20)]
    started = time.perf_counter()
    vectors = model.encode(passages, is_query=False)
    assert model.most == 2
    assert time.perf_counter() - started < 0.8 * len(passages) * RUN_S  # overlapped, not one after another
    assert vectors.shape == (20, 4) and np.allclose(vectors, 0.5)
    assert sorted(model.runs) == sorted("passage: " + p for p in passages)


def test_model_turns_with_two_slots_still_puts_a_question_first():
    model = TwoSlotModel()
    indexing = threading.Thread(target=model.encode, args=([f"段落{i}" for i in range(40)], False))
    indexing.start()
    time.sleep(5 * RUN_S)
    model.encode(["问题？"], is_query=True)
    indexing.join()
    assert model.runs.index("query: 问题？") < 20


def test_model_turns_refuses_no_slots():
    import pytest

    with pytest.raises(ValueError):
        ModelTurns(slots=0)
