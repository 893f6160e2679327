"""A read-only list stand-in whose rows are made when they are read.

A server's view of a large store keeps sentences and chunks as numpy columns or as runs of
another table's rows, not as one Python object each (about 130 MB per 100k chunks for the
sentences alone, docs/benchmarks.md). The classes doing so share this list behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence


class LazyRows(Sequence):
    """``rows[i]`` (negative too), ``rows[a:b]`` (a list), ``len``, iteration and ``==`` with a list or
    another sequence; subclasses give ``__len__`` and ``_row(i)`` for ``0 <= i < len``."""

    noun = "row"

    def _row(self, i: int):
        raise NotImplementedError

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"{self.noun} out of range")
        return self._row(i)

    def __iter__(self):
        for i in range(len(self)):
            yield self._row(i)

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, tuple, Sequence)) and not isinstance(other, str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # mutable-looking and compared by rows, like a list
