"""The short answer: the few words of the answering sentence that answer the question.

No Chinese reader model ships offline, so the span is chosen among candidates that
rules propose, by a linear chooser fitted on data:

- the sentence itself, each clause and runs of two or three clauses (split at ，；：);
- the gap the question word leaves: a question is often its sentence with the answer
  replaced ("大联盟在什么时候修改了…？" against "大联盟在1991年修改了…"), so the text between
  where the question's words before and after its question word match is the answer;
- values of the kind the question asks for (``answer_types``: a date, a length, a count…),
  and titles or quotations in 《》「」“”.

Questions that ask why, how, or for a list get no short answer: their answer is the
sentence, and a fragment of it would be a guess.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from rag.answer_types import asked_types, value_pattern
from rag.language import QUESTION_WORDS, asks_for_reason, asks_for_several
from rag.sentence_rank import char_bigrams

# Clause ends inside a sentence, and the marks a span is trimmed of.
_CLAUSE_MARK = re.compile(r"[，,；;：:。！？!?]")
_TRIM = "，,；;：:。！？!?、 \u3000\t"
_TITLE = re.compile(r"《[^》]{1,40}》|「[^」]{1,40}」|“[^”]{1,40}”|『[^』]{1,40}』")
_BARE_NUMBER = re.compile(r"[\d.,，]+\s*[万亿]?|[一二两三四五六七八九十百千万亿]+")
_NUMBER = re.compile(r"\d|[一二两三四五六七八九十百千万亿]")
_GENERIC_VALUE = re.compile(r"\d[\d.,，:：×%％~～\-–]*\d?\S{0,2}")
# Questions whose answer is a reason, a way or a list: the sentence answers, not a span.
_NO_SHORT = re.compile(r"如何|怎样|怎么(?!样)|哪些|有何|什么特点|什么作用|什么意义|\bhow\b(?!\s+(?:many|much|long|old|far|often|tall|big|high))", re.I)
# The question-word form decides which kinds of span fit (one-hot in the features).
QUESTION_FORMS = ("value", "who", "what", "other")
SPAN_KINDS = ("sentence", "clause", "run", "gap", "value", "title")
# Matching the question's words next to its question word: at least this many characters.
MIN_CONTEXT = 2
MAX_CONTEXT = 12
# Longest short answer offered; beyond it the sentence itself is the answer.
MAX_SHORT_CHARS = 60


@dataclass(frozen=True)
class Span:
    """A candidate answer: ``text[start:end]`` of the sentence, and how it was proposed."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Chooser:
    """score = weights · features; the best-scoring candidate is the short answer."""

    weights: np.ndarray


def feature_names() -> list[str]:
    """Names of the chooser's features, in column order."""
    pairs = [f"{k}|{f}" for k in SPAN_KINDS for f in QUESTION_FORMS]
    return pairs + ["question_pairs", "from_question", "log_length", "share_of_sentence",
                    "holds_gap", "touches_gap", "at_start", "at_end", "holds_asked_value"]


def load_chooser(path: Path | None = None) -> Chooser:
    """The fitted chooser shipped with the package, or one from ``path``."""
    raw = path.read_text(encoding="utf-8") if path else (resources.files("rag.data") / "short_answer.json").read_text(encoding="utf-8")
    weights = json.loads(raw)["weights"]
    return Chooser(np.array([float(weights.get(name, 0.0)) for name in feature_names()]))


def wants_short_answer(question: str) -> bool:
    """False for why, how and list questions: ``"为什么…？"`` -> False, ``"全长多少？"`` -> True."""
    return not (_NO_SHORT.search(question) or asks_for_reason(question) or asks_for_several(question))


def question_form(question: str) -> str:
    """``"value"`` (a date, number, place…), ``"who"``, ``"what"`` or ``"other"``."""
    if asked_types(question):
        return "value"
    if re.search(r"谁|哪位|什么人|何人|\bwho\b", question, re.I):
        return "who"
    if re.search(r"什么|哪个|哪一|何|\bwhat\b|\bwhich\b", question, re.I):
        return "what"
    return "other"


def candidates(question: str, sentence: str) -> tuple[list[Span], tuple[int, int] | None]:
    """Candidate spans of ``sentence`` for ``question``, and the question-word gap if one aligns."""
    body = len(sentence.rstrip(_TRIM))
    found: list[Span] = [Span("sentence", 0, body)]
    clauses = _clauses(sentence[:body])
    for i, (a, b) in enumerate(clauses):
        if len(clauses) > 1:
            found.append(Span("clause", a, b))
        for j in (i + 1, i + 2):
            if j < len(clauses) and not (i == 0 and j == len(clauses) - 1):
                found.append(Span("run", a, clauses[j][1]))
    gap = question_gap(question, sentence[:body])
    if gap:
        found.append(Span("gap", *gap))
    for kind in asked_types(question):
        found += [Span("value", m.start(), m.end()) for m in value_pattern(kind).finditer(sentence[:body])]
    found += [Span("value", m.start(), m.end()) for m in _GENERIC_VALUE.finditer(sentence[:body])]
    found += [Span("title", m.start(), m.end()) for m in _TITLE.finditer(sentence[:body])]
    return _distinct(_trimmed(sentence, found), question, sentence), gap


def question_gap(question: str, sentence: str) -> tuple[int, int] | None:
    """Where the question word's answer sits in ``sentence``: between the matched words around it.

    ``("大联盟在什么时候修改了定义？", "大联盟在1991年修改了定义")`` -> ``(4, 9)`` ("1991年").
    """
    match = QUESTION_WORDS.search(question)
    if not match:
        return None
    left = question[:match.start()]
    right = re.sub(r"^(的|是|了|呢)", "", question[match.end():].rstrip("？?。！! "))
    left_end = _suffix_end(left, sentence)
    right_start = _prefix_start(right, sentence, left_end if left_end is not None else 0)
    if left_end is not None and right_start is not None and right_start > left_end:
        return left_end, right_start
    if left_end is not None:
        mark = _CLAUSE_MARK.search(sentence, left_end)
        end = mark.start() if mark else len(sentence)
        return (left_end, end) if end > left_end else None
    if right_start is not None:
        begin = max([m.end() for m in _CLAUSE_MARK.finditer(sentence, 0, right_start)], default=0)
        return (begin, right_start) if right_start > begin else None
    return None


def _suffix_end(context: str, sentence: str) -> int | None:
    """End of the longest tail of ``context`` (at least MIN_CONTEXT characters) found in ``sentence``."""
    for length in range(min(len(context), MAX_CONTEXT), MIN_CONTEXT - 1, -1):
        at = sentence.find(context[-length:])
        if at >= 0:
            return at + length
    return None


def _prefix_start(context: str, sentence: str, after: int) -> int | None:
    """Start of the longest head of ``context`` found in ``sentence`` at or after ``after``."""
    for length in range(min(len(context), MAX_CONTEXT), MIN_CONTEXT - 1, -1):
        at = sentence.find(context[:length], after)
        if at >= 0:
            return at
    return None


def _clauses(text: str) -> list[tuple[int, int]]:
    spans, prev = [], 0
    for m in _CLAUSE_MARK.finditer(text):
        if m.start() > prev:
            spans.append((prev, m.start()))
        prev = m.end()
    if prev < len(text):
        spans.append((prev, len(text)))
    return spans


def _trimmed(sentence: str, spans: list[Span]) -> list[Span]:
    """Spans without surrounding punctuation or spaces; empty ones dropped."""
    out = []
    for s in spans:
        a, b = s.start, s.end
        while a < b and sentence[a] in _TRIM:
            a += 1
        while b > a and sentence[b - 1] in _TRIM:
            b -= 1
        if b > a:
            out.append(Span(s.kind, a, b))
    return out


_PAIRS = ("（）", "()", "《》", "「」", "“”", "『』", "[]", "【】")


def balanced(text: str) -> bool:
    """Whether every bracket and quote opened in ``text`` is closed in it: ``"MSCs(1×10⁸个"`` -> False."""
    return all(text.count(a) == text.count(b) for a, b in _PAIRS)


def _distinct(spans: list[Span], question: str, sentence: str) -> list[Span]:
    """Each span once (its first kind wins), leaving out values the question itself states and
    spans that cut a bracket or quotation in half."""
    seen, out = set(), []
    for s in spans:
        text = sentence[s.start:s.end]
        if (s.start, s.end) in seen or (s.kind == "value" and text in question) or not balanced(text):
            continue
        seen.add((s.start, s.end))
        out.append(s)
    return out


def features(question: str, sentence: str, spans: list[Span], gap: tuple[int, int] | None) -> np.ndarray:
    """The chooser's feature matrix: one row per candidate span."""
    form = question_form(question)
    q_pairs = char_bigrams(QUESTION_WORDS.sub(" ", question))
    q_chars = {c for c in question.lower() if c.isalnum()}
    asked = [value_pattern(k) for k in asked_types(question)]
    body = max(1, len(sentence.rstrip(_TRIM)))
    rows = []
    for s in spans:
        text = sentence[s.start:s.end]
        letters = [c for c in text.lower() if c.isalnum()] or [""]
        one_hot = [0.0] * (len(SPAN_KINDS) * len(QUESTION_FORMS))
        one_hot[SPAN_KINDS.index(s.kind) * len(QUESTION_FORMS) + QUESTION_FORMS.index(form)] = 1.0
        rows.append(one_hot + [
            len(char_bigrams(text) & q_pairs) / max(1, len(q_pairs)),
            sum(c in q_chars for c in letters) / len(letters),
            math.log1p(len(text)),
            len(text) / body,
            float(gap is not None and s.start <= gap[0] and gap[1] <= s.end),
            float(gap is not None and s.start < gap[1] and gap[0] < s.end),
            float(s.start == 0),
            float(s.end >= body),
            float(any(p.search(text) for p in asked)),
        ])
    return np.array(rows, dtype=np.float64).reshape(len(spans), len(feature_names()))


def choose(question: str, sentences: list[str], chooser: Chooser) -> tuple[int, int, int] | None:
    """The short answer as (sentence number, start, end) among ``sentences`` (those of the first
    citation), or None when no short span answers."""
    if not wants_short_answer(question):
        return None
    asked = [value_pattern(kind) for kind in asked_types(question)]
    best: tuple[float, int, Span] | None = None
    for n, sentence in enumerate(sentences):
        spans, gap = candidates(question, sentence)
        typed = [s for s in spans if s.kind == "value" and any(p.fullmatch(sentence[s.start:s.end]) for p in asked)
                 and _NUMBER.search(sentence[s.start:s.end])]
        if typed and (best is None or best[2].kind != "value"):
            best = None  # a value of the asked kind ("9例" for 几例) beats any clause
        elif not typed and best is not None and best[2].kind == "value":
            continue
        typed = [s for s in typed if not _BARE_NUMBER.fullmatch(sentence[s.start:s.end])] or typed  # "36例" over "150万"
        spans = typed or spans
        if not spans:
            continue
        scores = features(question, sentence, spans, gap) @ chooser.weights
        k = int(np.argmax(scores))
        if best is None or scores[k] > best[0]:
            best = (float(scores[k]), n, spans[k])
    if best is None or best[2].end - best[2].start > MAX_SHORT_CHARS:
        return None
    return best[1], best[2].start, best[2].end
