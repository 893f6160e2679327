"""top_indices selects exactly what a full stable sort would put first."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rag.answer.retriever import top_indices


def test_top_indices_example_orders_by_score_then_index():
    assert top_indices(np.array([0.5, 2.0, 0.5, 1.0]), 3).tolist() == [1, 3, 0]


def test_top_indices_k_zero_and_k_beyond_length():
    scores = np.array([1.0, 3.0])
    assert top_indices(scores, 0).tolist() == []
    assert top_indices(scores, 5).tolist() == [1, 0]


# Few distinct values, so ties straddle the cut-off often.
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 7.25]), min_size=1, max_size=300), st.integers(0, 320))
def test_top_indices_equals_stable_argsort(values, k):
    scores = np.array(values, dtype=np.float32)
    expected = np.argsort(-scores, kind="stable")[:k]
    assert top_indices(scores, k).tolist() == expected.tolist()
