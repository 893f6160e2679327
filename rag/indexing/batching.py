"""Which texts go into one model run: batches of similar token length under a padded-token budget.

A batch costs about (rows × its longest text) tokens, padding included. Sorting by token
length keeps the padding small; a token budget instead of a fixed row count lets short
sentences go many to a run (the per-run overhead is then shared) while long chunks go a few
at a time (onnxruntime pays more than torch for large padded batches).
"""

from __future__ import annotations


def length_batches(lengths: list[int], max_tokens: int, max_rows: int) -> list[list[int]]:
    """Indices of ``lengths`` in batches, longest first: each batch holds at most ``max_rows``
    texts and at most ``max_tokens`` padded tokens (rows × longest), and at least one text."""
    if max_tokens < 1 or max_rows < 1:
        raise ValueError("the token budget and the row limit must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        # The first (longest) text of a batch sets its padded length.
        if batch and len(batch) < max_rows and (len(batch) + 1) * lengths[batch[0]] <= max_tokens:
            batch.append(i)
        else:
            batches.append([i])
    return batches
