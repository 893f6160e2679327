"""The whole corpus's text, lower-cased, and fast answers to "does it hold this string, and where".

Answering checks whether the documents use a question's words at all (``known_share``,
``unknown_terms``) and finds every sentence naming a study (comparisons). Reading 400 MB of text
per question, as a plain ``in`` does at 1M chunks, costs seconds. Here an absent string is
usually ruled out by a bitmap of the text's characters and hashed character pairs (exact for one
character, a filter for longer strings); only what passes is looked for in the text itself, so
every answer is exact. Where a string occurs is mapped to a document by its offset and to a
sentence by that document's rows, not by reading every sentence.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator

import numpy as np

_UNICODE = 0x110000
_PAIR_BITS = 27  # 2**27 slots: a few per cent false positives for a few million distinct pairs
_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads consecutive codes
_BLOCK = 1 << 22  # characters turned into codes at a time (bounds the temporary arrays)


class CorpusText:
    """Every live document's text, lower-cased (same length as the original) and joined by newlines
    in the view's order, with the bitmaps that rule strings out."""

    def __init__(self, index) -> None:
        layout = index.layout
        self.doc_ids: list[str] = list(layout.order)
        parts = [same_length_lower(index.documents[d].text) for d in self.doc_ids]
        self.text = "\n".join(parts)
        lengths = np.fromiter((len(p) + 1 for p in parts), dtype=np.int64, count=len(parts))
        self.doc_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        ends = np.cumsum(np.asarray(layout.sentence_counts, dtype=np.int64))
        self.first_rows = ends - np.asarray(layout.sentence_counts, dtype=np.int64)  # each document's first sentence
        self._chars, self._pairs = _bitmaps(self.text)

    def holds(self, s: str) -> bool:
        """Whether the lower-cased corpus text holds ``s`` (give it lower-cased)."""
        if not s:
            return True
        codes = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        if not self._chars[codes].all():
            return False
        if len(s) > 1 and not _pair_bits(self._pairs, _pair_slots(codes)).all():
            return False
        return len(s) == 1 or s in self.text

    def occurrences(self, s: str) -> Iterator[int]:
        """Offsets of ``s`` in the joined text, overlapping ones too."""
        if not s or not self.holds(s):
            return
        at = self.text.find(s)
        while at >= 0:
            yield at
            at = self.text.find(s, at + 1)

    def sentences_holding(self, index, s: str) -> list[int]:
        """Ids of the sentences whose text holds ``s`` (lower-cased), in id order."""
        by_doc: dict[int, list[int]] = {}
        for at in self.occurrences(s):
            k = int(np.searchsorted(self.doc_starts, at, side="right")) - 1
            by_doc.setdefault(k, []).append(at - int(self.doc_starts[k]))
        found: set[int] = set()
        for k, offsets in by_doc.items():
            first = int(self.first_rows[k])
            rows = index.sentences[first:first + int(index.layout.sentence_counts[k])]
            starts = [r.start for r in rows]
            for off in offsets:
                j = bisect_right(starts, off) - 1
                if j >= 0 and off + len(s) <= rows[j].end:
                    found.add(first + j)
        return sorted(found)


def same_length_lower(text: str) -> str:
    """``text.lower()``, except that the few characters whose lower case is longer (``"İ"``) stay as
    they are, so that offsets in the lowered text are offsets in the original."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _bitmaps(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Which characters occur (exact), and which hashed pairs of adjacent characters (packed bits)."""
    chars = np.zeros(_UNICODE, dtype=bool)
    pairs = np.zeros(1 << _PAIR_BITS, dtype=bool)
    for a in range(0, len(text), _BLOCK):
        codes = np.frombuffer(text[a:a + _BLOCK + 1].encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        chars[codes] = True
        pairs[_pair_slots(codes)] = True
    return chars, np.packbits(pairs)


def _pair_slots(codes: np.ndarray) -> np.ndarray:
    """The hashed slot of each pair of adjacent code points."""
    pair = codes[:-1] * np.uint64(_UNICODE) + codes[1:]
    return (pair * _HASH) >> np.uint64(64 - _PAIR_BITS)


def _pair_bits(packed: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """The bits at ``slots`` of a bitmap packed by ``np.packbits`` (first bit the highest)."""
    return (packed[slots >> np.uint64(3)] >> (np.uint64(7) - (slots & np.uint64(7))).astype(np.uint8)) & 1 == 1


def corpus_text(index) -> CorpusText:
    """The index's ``CorpusText``, made once (memoised on the index)."""
    return index.memoised("corpus_text", lambda: CorpusText(index))
