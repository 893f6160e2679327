"""Sentence splitting for Chinese (and mixed) text, judged on jieba's tokens.

A sentence is a span ``(start, end)`` of the original text, so ``text[start:end]``
is the sentence itself: nothing is normalised, offsets stay valid for citations.

    >>> text = "平均病程为卒中后4.2年。剂量为1×10⁸个细胞。"
    >>> [text[s:e] for s, e in split_spans(text)]
    ['平均病程为卒中后4.2年。', '剂量为1×10⁸个细胞。']
"""

from __future__ import annotations

import re

from rag.ingest.segment import tokenize

# Marks that always end a sentence in Chinese text.
CJK_ENDERS = frozenset("。！？；…")
# ASCII marks end a sentence only where the context says so (not in "4.2", "et al.", "e.g.").
ASCII_ENDERS = frozenset(".!?;")
# Closing quotes and brackets stay with the sentence they close. ASCII quotes are left out:
# they open as often as they close, so they cannot be told apart here.
CLOSERS = frozenset("”’」』）)]】〕》〉")
# Words that a following "." abbreviates rather than ends ("et al.", "Fig. 1", "vs.").
ABBREVIATIONS = frozenset(
    {"al", "etc", "vs", "fig", "figs", "eq", "no", "dr", "mr", "mrs", "ms", "prof",
     "approx", "ca", "cf", "vol", "pp", "p", "ref", "refs", "jr", "sr", "st"}
)
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
_LINE = re.compile(r"[^\n]+")


def split_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]``, in order, non-overlapping, whitespace trimmed.

    Line breaks always end a sentence; inside a line the marks decide.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(text, start, end):
        spans.extend(_split_line(text, line.start(), line.end()))
    return spans


def _split_line(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the sentences of one line."""
    line = text[start:end]
    tokens = tokenize(line)
    enclosed = _inside_brackets(line)
    cuts: list[int] = []
    i = 0
    while i < len(tokens):
        word, tok_start, tok_end = tokens[i]
        if _free(enclosed, tok_start, tok_end, line) and _ends_sentence(tokens, i, line):
            # A run of marks ("？！", "……", "?!") and the closers after it stay together.
            j = i + 1
            while j < len(tokens) and all(c in CJK_ENDERS or c in ASCII_ENDERS or c in CLOSERS for c in tokens[j][0]):
                tok_end = tokens[j][2]
                j += 1
            cuts.append(tok_end)
            i = j
            continue
        i += 1
    spans, prev = [], 0
    for cut in cuts + [len(line)]:
        span = _trim(line, prev, cut)
        if span:
            spans.append((start + span[0], start + span[1]))
        prev = cut
    return spans


_OPENERS = {"（": "）", "(": ")", "【": "】", "[": "]", "〔": "〕"}


def _inside_brackets(line: str) -> dict[int, tuple[int, int]]:
    """Offsets of ``line`` inside a pair of brackets that opens and closes on it, each with where its
    pair opens and closes. A bracket left open encloses nothing."""
    inside: dict[int, tuple[int, int]] = {}
    stack: list[int] = []
    for at, ch in enumerate(line):
        if ch in _OPENERS:
            stack.append(at)
        elif stack and ch == _OPENERS[line[stack[-1]]]:
            opened = stack.pop()
            if not stack:
                inside.update(dict.fromkeys(range(opened + 1, at), (opened, at)))
        elif ch in _OPENERS.values():
            stack.clear()  # a closer that matches no opener: the pairing is lost, start again
    return inside


def _free(enclosed: dict[int, tuple[int, int]], start: int, end: int, line: str) -> bool:
    """Whether a mark at ``line[start:end]`` may end a sentence: it is outside brackets, or it ends
    a sentence they enclose ("(见上文。)然后…"). Otherwise, inside them it ends nothing
    ("牛车水（；）是…", "（见表1；n=30）")."""
    if start not in enclosed:
        return True
    opened, closed = enclosed[start]
    marks = CJK_ENDERS | ASCII_ENDERS | CLOSERS
    return (any(c not in marks and not c.isspace() for c in line[opened + 1:start])
            and all(c in marks or c.isspace() for c in line[end:closed]))


def _ends_sentence(tokens: list[tuple[str, int, int]], i: int, line: str) -> bool:
    """Whether token ``i`` is a mark that truly ends a sentence."""
    word, tok_start, tok_end = tokens[i]
    if not word or not all(c in CJK_ENDERS or c in ASCII_ENDERS for c in word):
        return False
    if any(c in CJK_ENDERS for c in word):
        return True
    # ASCII mark: it must be followed by a space, the end of the line, a CJK character or a closer.
    nxt = line[tok_end:tok_end + 1]
    if nxt and not (nxt.isspace() or _CJK.match(nxt) or nxt in CLOSERS):
        return False  # "doi.org", "E.;", "e.g": the mark sits inside something
    prev = _previous_word(tokens, i)
    if word == "." and prev is not None:
        if prev.lower() in ABBREVIATIONS:
            return False  # "et al.", "Fig."
        if len(prev) == 1 and prev.isalpha() and prev.isascii():
            return False  # an initial or "e.g." / "i.e."
        if prev.isdigit() and _is_line_start(tokens, i - 1):
            return False  # "1. " numbering a list item
    if word == ";" and i > 0 and tokens[i - 1][0] == "." and not _ends_sentence(tokens, i - 1, line):
        return False  # "Shulman, I.; Rizvanov, A." separates names, not sentences
    return True


def _previous_word(tokens: list[tuple[str, int, int]], i: int) -> str | None:
    """The token just before ``i`` when it touches the mark (no space between)."""
    if i == 0 or tokens[i - 1][2] != tokens[i][1]:
        return None
    return tokens[i - 1][0]


def _is_line_start(tokens: list[tuple[str, int, int]], i: int) -> bool:
    """Whether token ``i`` is the first non-space token of its line."""
    return all(not t[0].strip() for t in tokens[:i])


def _trim(line: str, start: int, end: int) -> tuple[int, int] | None:
    """Shrink ``[start, end)`` to exclude surrounding whitespace; None when nothing is left."""
    while start < end and _blank(line[start]):
        start += 1
    while end > start and _blank(line[end - 1]):
        end -= 1
    return (start, end) if start < end else None


def _blank(ch: str) -> bool:
    """Whitespace, or a byte-order mark left at the start of a file."""
    return ch.isspace() or ch == "\ufeff"
