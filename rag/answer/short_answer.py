"""The short answer: the few words of the answering sentence that answer the question.

No Chinese reader model ships offline, so the span is chosen among candidates that
rules propose, by a chooser fitted on data:

- the sentence itself, each clause and runs of two or three clauses (split at ，；：);
- the gap the question word leaves: a question is often its sentence with the answer
  replaced ("大联盟在什么时候修改了…？" against "大联盟在1991年修改了…"), so the text between
  where the question's words before and after its question word match is the answer;
- values of the kind the question asks for (``answer_types``: a date, a length, a count…),
  whole dates and joined ranges, cut to whole words, and titles or quotations in 《》「」“”.

The chooser is a softmax over the candidates of all the first citation's sentences, fitted
by ``rag fit`` on CMRC's fit half. A measured value of the asked kind ("9例" for 几例) wins
outright. A why, how, yes-or-no or list question is answered by a clause or more (never a
lone value), and that short answer is marked in its quote rather than said again before it
(``leads``). A statement (a writer's claim) asks nothing and gets no short answer.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rag.ingest import segment
from rag.answer.answer_types import asked_types, value_pattern
from rag.answer.language import QUESTION_WORDS, asks_for_reason, asks_for_several
from rag.answer.sentence_rank import char_bigrams

# Clause ends inside a sentence, and the marks a span is trimmed of.
_CLAUSE_MARK = re.compile(r"[，,；;：:。！？!?]")
_TRIM = "，,；;：:。！？!?、 \u3000\t"
_TITLE = re.compile(r"《[^》]{1,40}》|「[^」]{1,40}」|“[^”]{1,40}”|『[^』]{1,40}』")
_BARE_NUMBER = re.compile(r"[\d.,，]+\s*[万亿]?|[一二两三四五六七八九十百千万亿]+")
_NUMBER = re.compile(r"\d|[一二两三四五六七八九十百千万亿]")
# A calendar date, whole: "2009年9月27日", "2006年6月", "9月27日".
_DATE = re.compile(r"(?:公元前?)?(?:\d{1,4}|[一二三四五六七八九十〇零]{1,4})年(?:\d{1,2}月(?:\d{1,2}日)?)?|\d{1,2}月\d{1,2}日")
# What may stand between two values that together are one answer ("15日及8月16日", "5~32公里").
_VALUE_JOIN = re.compile(r"\s*(?:[-–—~～至到、]|及|和|或)?\s*")
# A measure word after a count question word: 分钟, 个, 名, 次, 届…
_UNIT = re.compile(r"(?:个|位|名|次|届|场|座|所|家|种|条|部|张|首|本|项|件|只|头|匹|层|分钟|小时|秒|天|周|年|岁|倍|人|米|公里|公尺|公分|英尺|厘米|平方公里|公顷|吨|公斤|元|美元|万|亿)")
# A linking word the answer does not include when a gap starts with it ("于", "在", "是", "由"…).
_LEADING_LINK = re.compile(r"(?:是|为|于|在|由|被|与|和|以|从|将|把|叫做?|称为|名为|又称|或称|简称|位于|共有|共|约|达|曾)")
# Particles an answer rarely ends with: "石油的", "保罗·皮尔斯则".
_PARTICLES = "的了则等着过吗呢也"
_GENERIC_VALUE = re.compile(r"\d[\d.,，:：×%％~～\-–]*\d?\S{0,2}")
# Open questions (a reason, a way, a list, yes or no): a clause or more answers, never a lone value.
_NO_SHORT = re.compile(r"如何|怎样|怎么(?!样)|哪些|有何|什么特点|什么作用|什么意义|吗[？?]?\s*$|是否|会不会|有没有|能不能|是不是|可不可以|还是|\bhow\b(?!\s+(?:many|much|long|old|far|often|tall|big|high))", re.I)
# The question-word form decides which kinds of span fit (one-hot in the features); "open"
# is a why, how or list question, whose answer is usually a clause or the sentence.
QUESTION_FORMS = ("value", "who", "what", "open", "other")
SPAN_KINDS = ("sentence", "clause", "run", "gap", "value", "title")
# Kinds of word (jieba's part-of-speech tags) a span may hold, crossed with the question form:
# a who-question wants a person's name, a where-question a place.
POS_KINDS = ("person", "place", "organisation", "number", "time", "noun")
_POS_OF = {"nr": "person", "nrfg": "person", "nrt": "person", "ns": "place", "nt": "organisation",
           "m": "number", "mq": "number", "q": "number", "t": "time", "n": "noun", "nz": "noun", "eng": "noun"}
# Matching the question's words next to its question word: at least this many characters.
MIN_CONTEXT = 2
MAX_CONTEXT = 12
# Kinds of value that are a number with a unit: when one is asked for, a value of that kind
# is the answer. (Dates, places and organisations are looser; the chooser weighs those.)
MEASURED_KINDS = ("dose", "duration", "times", "count", "cost", "measure", "age", "temperature")
# Longest short answer that goes before the quote in the answer text.
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
                    "holds_gap", "touches_gap", "at_start", "at_end", "holds_asked_value",
                    "gap_context", "gap_both_sides", "sentence_question_pairs", "cuts_word",
                    "starts_with_link", "ends_with_particle", "is_asked_value", "bare_number"] + [
                    f"pos_{tag}|{f}" for tag in POS_KINDS for f in QUESTION_FORMS] + [f"log_length|{f}" for f in QUESTION_FORMS]


def load_chooser(path: Path | None = None) -> Chooser:
    """The fitted chooser shipped with the package, or one from ``path``."""
    raw = path.read_text(encoding="utf-8") if path else (resources.files("rag.data") / "short_answer.json").read_text(encoding="utf-8")
    weights = json.loads(raw)["weights"]
    return Chooser(np.array([float(weights.get(name, 0.0)) for name in feature_names()]))


def wants_short_answer(question: str) -> bool:
    """False for why, how, yes-or-no and list questions: ``"为什么…？"`` -> False, ``"全长多少？"`` -> True."""
    return not (_NO_SHORT.search(question) or asks_for_reason(question) or asks_for_several(question))


def leads(question: str, short: str, passage: str) -> bool:
    """Whether the short answer goes before the quoted passage in the answer text.

    It does for a question a few words answer ("几例？" -> "9例——…"). For a why, how, yes-or-no
    or list question, or when the span is most of a sentence, the passage itself is the answer,
    and repeating part of it in front would only say it twice; the short answer is still given
    (and marked inside the quote on the page).
    """
    return wants_short_answer(question) and len(short) <= MAX_SHORT_CHARS and short != passage


def question_form(question: str) -> str:
    """``"value"`` (a date, number, place…), ``"who"``, ``"what"``, ``"open"`` (why, how, which ones) or ``"other"``."""
    if not wants_short_answer(question):
        return "open"
    if asked_types(question):
        return "value"
    if re.search(r"谁|哪位|什么人|何人|\bwho\b", question, re.I):
        return "who"
    if re.search(r"什么|哪个|哪一|何|\bwhat\b|\bwhich\b", question, re.I):
        return "what"
    return "other"


class Gap(NamedTuple):
    """Where the question word's answer sits, and how many characters matched on its left and right."""

    start: int
    end: int
    left: int
    right: int


def candidates(question: str, sentence: str) -> tuple[list[Span], Gap | None]:
    """Candidate spans of ``sentence`` for ``question``, and the question-word gap if one aligns."""
    body = len(sentence.rstrip(_TRIM))
    found: list[Span] = [Span("sentence", 0, body)]
    clauses = _clauses(sentence[:body])
    open_question = not wants_short_answer(question)
    for i, (a, b) in enumerate(clauses):
        if len(clauses) > 1:
            found.append(Span("clause", a, b))
        for j in (i + 1, i + 2):
            if j < len(clauses) and not (i == 0 and j == len(clauses) - 1):
                found.append(Span("run", a, clauses[j][1]))
    gap = question_gap(question, sentence[:body])
    if gap:
        found.append(Span("gap", gap.start, gap.end))
        lead = _LEADING_LINK.match(sentence, gap.start, gap.end)
        if lead and lead.end() < gap.end:
            found.append(Span("gap", lead.end(), gap.end))  # "于2009年…" -> "2009年…"
    if open_question:  # a why, how, yes-or-no or list question is answered by a clause or more
        return _distinct(_trimmed(sentence, found), question, sentence), gap
    for kind in asked_types(question):
        found += [Span("value", m.start(), m.end()) for m in value_pattern(kind).finditer(sentence[:body])]
    found += [Span("value", m.start(), m.end()) for m in _GENERIC_VALUE.finditer(sentence[:body])]
    found += [Span("value", *joined) for joined in _joined_values(sentence[:body], found)]
    found += [Span("value", m.start(), m.end()) for m in _DATE.finditer(sentence[:body])]
    found += [Span("title", m.start(), m.end()) for m in _TITLE.finditer(sentence[:body])]
    found = [_to_word_ends(s, sentence) if s.kind == "value" else s for s in found]
    return _distinct(_trimmed(sentence, found), question, sentence), gap


@lru_cache(maxsize=256)
def word_bounds(sentence: str) -> frozenset[int]:
    """Offsets where a jieba word starts or ends in ``sentence`` (and its two ends)."""
    return frozenset({0, len(sentence)} | {b for _, a, z in segment.tokenize(sentence) for b in (a, z)})


@lru_cache(maxsize=256)
def word_kinds(sentence: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, kind) of the words of ``sentence`` whose part of speech is one of POS_KINDS."""
    return tuple((a, b, _POS_OF[tag]) for _, tag, a, b in segment.tagged(sentence) if tag in _POS_OF)


def _to_word_ends(span: Span, sentence: str) -> Span:
    """A value span shrunk to whole words: the pattern's loose tail must not take half a word
    ("9例患" of "9例患者" -> "9例")."""
    bounds = word_bounds(sentence)
    end = max((b for b in bounds if span.start < b <= span.end), default=span.end)
    return Span(span.kind, span.start, end)


def question_gap(question: str, sentence: str) -> Gap | None:
    """Where the question word's answer sits in ``sentence``: between the matched words around it.

    ``("大联盟在什么时候修改了定义？", "大联盟在1991年修改了定义")`` -> ``Gap(4, 9, 3, 6)`` ("1991年").
    """
    match = QUESTION_WORDS.search(question)
    if not match:
        return None
    left = question[:match.start()]
    right = re.sub(r"^(的|是|了|呢)", "", question[match.end():].rstrip("？?。！! "))
    left_end, left_len = _suffix_end(left, sentence)
    right_start, right_len = _prefix_start(right, sentence, left_end if left_end is not None else 0)
    if left_end is not None and right_start is not None and right_start > left_end:
        return Gap(left_end, _with_unit(match.group(0), right, sentence, right_start), left_len, right_len)
    if left_end is not None:
        mark = _CLAUSE_MARK.search(sentence, left_end)
        end = mark.start() if mark else len(sentence)
        return Gap(left_end, end, left_len, 0) if end > left_end else None
    if right_start is not None:
        begin = max([m.end() for m in _CLAUSE_MARK.finditer(sentence, 0, right_start)], default=0)
        end = _with_unit(match.group(0), right, sentence, right_start)
        return Gap(begin, end, 0, right_len) if right_start > begin else None
    return None


def _with_unit(question_word: str, right: str, sentence: str, right_start: int) -> int:
    """Where the gap ends: after the measure word a count question puts after its question word.

    "多少分钟内不得…" against "4分钟内不得…": the answer is "4分钟", not "4".
    """
    if question_word not in ("多少", "几"):
        return right_start
    unit = _UNIT.match(right)
    if unit and sentence.startswith(unit.group(0), right_start):
        return right_start + len(unit.group(0))
    return right_start


def _suffix_end(context: str, sentence: str) -> tuple[int | None, int]:
    """End of the longest tail of ``context`` (at least MIN_CONTEXT characters) found in ``sentence``, and its length."""
    for length in range(min(len(context), MAX_CONTEXT), MIN_CONTEXT - 1, -1):
        at = sentence.find(context[-length:])
        if at >= 0:
            return at + length, length
    return None, 0


def _prefix_start(context: str, sentence: str, after: int) -> tuple[int | None, int]:
    """Start of the longest head of ``context`` found in ``sentence`` at or after ``after``, and its length."""
    for length in range(min(len(context), MAX_CONTEXT), MIN_CONTEXT - 1, -1):
        at = sentence.find(context[:length], after)
        if at >= 0:
            return at, length
    return None, 0


def _joined_values(sentence: str, spans: list[Span]) -> list[tuple[int, int]]:
    """Runs of value spans that follow each other with at most a joining word between them."""
    values = sorted({(s.start, s.end) for s in spans if s.kind == "value"})
    runs: list[tuple[int, int]] = []
    for start, end in values:
        if runs and start >= runs[-1][0]:
            between = sentence[runs[-1][1]:start] if start > runs[-1][1] else ""
            if end > runs[-1][1] and _VALUE_JOIN.fullmatch(between):
                runs[-1] = (runs[-1][0], end)
                continue
            if end <= runs[-1][1]:
                continue
        runs.append((start, end))
    return [r for r in runs if (r[0], r[1]) not in values]


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
    spans that cut a bracket, a quotation or a number in half ("1日" of "21日")."""
    seen, out = set(), []
    for s in spans:
        text = sentence[s.start:s.end]
        if (s.start, s.end) in seen or (s.kind == "value" and text in question) or not balanced(text):
            continue
        if s.kind == "value" and _cuts_number(sentence, s.start, s.end):
            continue
        seen.add((s.start, s.end))
        out.append(s)
    return out


def _is_value_of(text: str, patterns: list[re.Pattern]) -> bool:
    """Whether ``text`` is, whole, a number-bearing value of one of the patterns (a count, not a bare "150万")."""
    return (bool(_NUMBER.search(text)) and not _BARE_NUMBER.fullmatch(text)
            and any(p.fullmatch(text) for p in patterns))


def _cuts_number(sentence: str, start: int, end: int) -> bool:
    """Whether a span starts or ends inside a run of digits."""
    return (0 < start and sentence[start - 1].isdigit() and sentence[start].isdigit()) or (
        end < len(sentence) and sentence[end - 1].isdigit() and sentence[end].isdigit())


def features(question: str, sentence: str, spans: list[Span], gap: Gap | None) -> np.ndarray:
    """The chooser's feature matrix: one row per candidate span."""
    form = question_form(question)
    q_pairs = char_bigrams(QUESTION_WORDS.sub(" ", question))
    q_chars = {c for c in question.lower() if c.isalnum()}
    asked = [value_pattern(k) for k in asked_types(question)]
    body = max(1, len(sentence.rstrip(_TRIM)))
    # How well the sentence as a whole matches the question: of several cited sentences,
    # the answer is in the one the question restates.
    sentence_pairs = len(char_bigrams(sentence) & q_pairs) / max(1, len(q_pairs))
    context = math.log1p(gap.left + gap.right) if gap else 0.0
    bounds = word_bounds(sentence)
    tagged = word_kinds(sentence)
    rows = []
    for s in spans:
        text = sentence[s.start:s.end]
        letters = [c for c in text.lower() if c.isalnum()] or [""]
        held = {kind for a, b, kind in tagged if s.start <= a and b <= s.end}
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
            context if s.kind == "gap" else 0.0,
            float(s.kind == "gap" and gap is not None and gap.left > 0 and gap.right > 0),
            sentence_pairs,
            float(s.start not in bounds) + float(s.end not in bounds),
            float(bool(_LEADING_LINK.match(text))),
            float(text[-1] in _PARTICLES),
            # A whole value of the asked kind ("9例" for 几例), and a number without its unit ("150万").
            float(s.kind == "value" and _is_value_of(text, asked)),
            float(bool(_BARE_NUMBER.fullmatch(text))),
            *[math.log1p(len(text)) * (form == f) for f in QUESTION_FORMS],
            *[float(kind in held) * (form == f) for kind in POS_KINDS for f in QUESTION_FORMS],
        ])
    return np.array(rows, dtype=np.float64).reshape(len(spans), len(feature_names()))


def choose(question: str, sentences: list[str], chooser: Chooser) -> tuple[int, int, int] | None:
    """The short answer as (sentence number, start, end) among ``sentences`` (those of the first
    citation), or None for a statement (a writer's claim asks nothing) or when nothing is a candidate.

    A measured value of the asked kind ("9例" for 几例, "1,000米" for 多长) beats any other
    candidate in any of the sentences; otherwise the chooser's best candidate wins.
    """
    if not QUESTION_WORDS.search(question):
        return None
    measured = [value_pattern(kind) for kind in asked_types(question) if kind in MEASURED_KINDS]
    best: tuple[bool, float, int, Span] | None = None
    for n, sentence in enumerate(sentences):
        spans, gap = candidates(question, sentence)
        if not spans:
            continue
        scores = features(question, sentence, spans, gap) @ chooser.weights
        typed = [_is_value_of(sentence[s.start:s.end], measured) if s.kind == "value" else False for s in spans]
        k = max(range(len(spans)), key=lambda i: (typed[i], scores[i]))
        if best is None or (typed[k], scores[k]) > best[:2]:
            best = (typed[k], float(scores[k]), n, spans[k])
    return None if best is None else (best[2], best[3].start, best[3].end)
