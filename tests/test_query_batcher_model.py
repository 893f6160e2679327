"""With the real model, a question embedded in a batch gets the vector it gets alone.

Padding to the batch's longest question is masked out, so the only difference is rounding:
measured at most ~4e-8 per component for e5-small on onnxruntime.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # loads the real model

# Short and long, Chinese, English and mixed, empty and blank: unequal lengths, so a batch pads most of them.
QUESTIONS = ["为什么Bang和Chung的研究结论不一致？", "那剂量是多少？", "How many patients did Levy et al. treat?",
             "静脉输注后为什么只有少量细胞到达靶组织？", "MSC-EVs 在阿尔茨海默病模型中有什么作用？", "", "   ",
             "1×10⁸个细胞 Aβ42 et al.", "随访了多久？", "MSC治疗肌萎缩侧索硬化的临床效果如何？" * 4]
# Padding may change a component by rounding only.
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def onnx(real_settings):
    from rag.indexing.embedder import load_embedder

    return load_embedder(real_settings)


def test_one_run_for_many_questions_gives_each_its_own_vector(onnx):
    alone = np.vstack([onnx.encode([q], is_query=True) for q in QUESTIONS])
    together = onnx.encode_batch(QUESTIONS, is_query=True)
    assert np.abs(together - alone).max() <= TOLERANCE


def test_concurrent_questions_through_the_batcher_get_their_own_vectors(onnx):
    from rag.indexing.query_batcher import QueryBatcher

    runs = []
    batcher = QueryBatcher(onnx)
    real_run = batcher._run_batch
    batcher._run_batch = lambda texts, is_query: runs.append(len(texts)) or real_run(texts, is_query)
    got: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(len(QUESTIONS))

    def ask(i: int) -> None:
        barrier.wait()
        got[i] = batcher.encode([QUESTIONS[i]], is_query=True)[0]

    threads = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(got) == list(range(len(QUESTIONS)))
    assert max(runs) > 1 and sum(runs) == len(QUESTIONS)  # some questions really shared a run
    for i, q in enumerate(QUESTIONS):
        assert np.abs(got[i] - onnx.encode([q], is_query=True)[0]).max() <= TOLERANCE
