"""Batches of similar token length (rag.indexing.batching)."""

from __future__ import annotations

import pytest

from rag.indexing.batching import length_batches


def test_every_text_once_longest_first_in_runs_of_the_row_limit():
    lengths = [5, 40, 12, 41, 3, 7, 12]
    batches = length_batches(lengths, max_rows=3)
    assert batches == [[3, 1, 2], [6, 5, 0], [4]]
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_nothing_in_nothing_out_and_a_bad_limit_refused():
    assert length_batches([], max_rows=2) == []
    with pytest.raises(ValueError):
        length_batches([1], max_rows=0)
