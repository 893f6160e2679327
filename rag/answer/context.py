"""A cited span in its surroundings: the text around a quote, for a reader to check it."""

from __future__ import annotations

import re

# How far the context reaches on each side of the quote, at most (characters).
CONTEXT_CHARS = 200
_SENTENCE_END = re.compile(r"[。！？!?；;]")


def context_bounds(text: str, start: int, end: int, reach: int = CONTEXT_CHARS) -> tuple[int, int]:
    """(start, end) of the text around ``text[start:end]``: up to ``reach`` characters each side,
    taken to whole lines where it can and to whole sentences otherwise.

    A quote is often a whole paragraph (one line of the document), so the context reaches into
    the paragraphs before and after it: what leads to the quote and what follows it.
    """
    lo, hi = max(0, start - reach), min(len(text), end + reach)
    if lo > 0:
        before = text[lo:start]
        line = before.find("\n")
        sentence = _SENTENCE_END.search(before)
        lo += line + 1 if line >= 0 else sentence.end() if sentence else 0
    if hi < len(text):
        after = text[end:hi]
        line = after.rfind("\n")
        sentences = [m.end() for m in _SENTENCE_END.finditer(after)]
        hi = end + (line if line >= 0 else sentences[-1] if sentences else len(after))
    while lo < start and text[lo].isspace():
        lo += 1
    while hi > end and text[hi - 1].isspace():
        hi -= 1
    return lo, hi
