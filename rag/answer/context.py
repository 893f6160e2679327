"""A cited span in its surroundings: the paragraph around a quote, for a reader to check it."""

from __future__ import annotations

import re

# How far the context reaches on each side of the quote, at most (characters).
CONTEXT_CHARS = 400
_SENTENCE_END = re.compile(r"[。！？!?；;]")


def context_bounds(text: str, start: int, end: int, reach: int = CONTEXT_CHARS) -> tuple[int, int]:
    """(start, end) of the paragraph holding ``text[start:end]``, cut to ``reach`` characters
    either side at a sentence end, so the quote is shown with what leads to it and follows it."""
    para_start = text.rfind("\n", 0, start) + 1
    para_end = text.find("\n", end)
    para_end = len(text) if para_end < 0 else para_end
    if start - para_start > reach:
        window = text[start - reach:start]
        cut = [m.end() for m in _SENTENCE_END.finditer(window)]
        para_start = start - reach + (cut[0] if cut else 0)
    if para_end - end > reach:
        window = text[end:end + reach]
        cut = [m.end() for m in _SENTENCE_END.finditer(window)]
        para_end = end + (cut[-1] if cut else reach)
    return para_start, max(para_end, end)
