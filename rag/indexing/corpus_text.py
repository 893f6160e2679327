"""The whole corpus's text, lower-cased, and fast answers to "does it hold this string, and where".

Answering checks whether the documents use a question's words at all (``known_share``,
``unknown_terms``) and finds every sentence naming a study (comparisons). Reading 400 MB of text
per question, as a plain ``in`` does at 1M chunks, costs seconds. Here an absent string is
usually ruled out by a bitmap of the text's characters and hashed character pairs (exact for one
character, a filter for longer strings); only what passes is looked for in the text itself, so
every answer is exact. Where a string occurs is mapped to a sentence by the rows' span columns,
not by reading every sentence.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rag.ingest.corpus import SentenceTable

_UNICODE = 0x110000
_PAIR_BITS = 27  # 2**27 slots: a few per cent false positives for a few million distinct pairs
_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads consecutive codes
_BLOCK = 1 << 22  # characters turned into codes at a time (bounds the temporary arrays)


class CorpusText:
    """Every live document's text, lower-cased (same length as the original) and joined by newlines
    in the view's order, with the bitmaps that rule strings out."""

    def __init__(self, index) -> None:
        parts = [same_length_lower(index.documents[d].text) for d in index.layout.order]
        self.text = "\n".join(parts)
        lengths = np.fromiter((len(p) + 1 for p in parts), dtype=np.int64, count=len(parts))
        self.doc_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self._chars, self._pairs = _bitmaps(self.text)
        self._spans: tuple[np.ndarray, np.ndarray] | None = None

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
        at = np.fromiter(self.occurrences(s), dtype=np.int64)
        if not len(at):
            return []
        starts, ends = self._sentence_spans(index)
        row = np.searchsorted(starts, at, side="right") - 1
        inside = (row >= 0) & (at + len(s) <= ends[np.maximum(row, 0)])
        return np.unique(row[inside]).tolist()

    def _sentence_spans(self, index) -> tuple[np.ndarray, np.ndarray]:
        """Each sentence row's start and end in the joined text (increasing: the rows are in the
        view's document order, each document's in text order), made on first use."""
        if self._spans is None:
            starts, ends = _sentence_columns(index.sentences)
            base = np.repeat(self.doc_starts, np.asarray(index.layout.sentence_counts, dtype=np.int64))
            self._spans = (starts + base, ends + base)
        return self._spans


def same_length_lower(text: str) -> str:
    """``text.lower()``, except that the few characters whose lower case is longer (``"İ"``) stay as
    they are, so that offsets in the lowered text are offsets in the original."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _sentence_columns(rows) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every sentence row (``SentenceRows``), read as columns where a run keeps them."""
    starts, ends = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for src, a, b in rows.runs:
        if isinstance(src, SentenceTable):
            starts.append(src.start[a:b].astype(np.int64))
            ends.append(src.end[a:b].astype(np.int64))
        else:
            part = [src[j] for j in range(a, b)]
            starts.append(np.fromiter((r.start for r in part), np.int64, len(part)))
            ends.append(np.fromiter((r.end for r in part), np.int64, len(part)))
    return np.concatenate(starts), np.concatenate(ends)


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
