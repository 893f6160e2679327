"""Batches of similar token length under a padded-token budget (rag.indexing.batching)."""

from __future__ import annotations

import pytest

from rag.indexing.batching import length_batches


def test_every_text_once_longest_first():
    lengths = [5, 40, 12, 40, 3, 7]
    batches = length_batches(lengths, max_tokens=80, max_rows=8)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_budget_counts_padding_to_the_longest_of_the_batch():
    batches = length_batches([40, 40, 12, 5, 3], max_tokens=80, max_rows=8)
    for b in batches:
        assert len(b) * max(([40, 40, 12, 5, 3][i] for i in b)) <= 80
    assert batches == [[0, 1], [2, 3, 4]]


def test_short_texts_go_many_to_a_batch_up_to_the_row_limit():
    batches = length_batches([10] * 20, max_tokens=1000, max_rows=8)
    assert [len(b) for b in batches] == [8, 8, 4]


def test_a_text_longer_than_the_budget_still_gets_a_batch_of_its_own():
    assert length_batches([600, 20], max_tokens=100, max_rows=4) == [[0], [1]]


def test_nothing_in_nothing_out_and_bad_limits_refused():
    assert length_batches([], max_tokens=10, max_rows=2) == []
    with pytest.raises(ValueError):
        length_batches([1], max_tokens=0, max_rows=2)
