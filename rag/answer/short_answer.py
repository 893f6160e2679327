"""The short answer: the few words of the answering sentence that answer the question.

No Chinese reader model ships offline, so the span is chosen among candidates that
rules propose, by a chooser fitted on data:

- the sentence itself, each clause and runs of two or three clauses (split at ，；：);
- the gap the question word leaves: a question is often its sentence with the answer
  replaced ("大联盟在什么时候修改了…？" against "大联盟在1991年修改了…"), so the text between
  where the question's words before and after its question word match is the answer;
- values of the kind the question asks for (``answer_types``: a date, a length, a count…),
  whole dates and joined ranges, cut to whole words, and titles or quotations in 《》「」“”;
- runs of one to eight jieba words inside a clause ("words"), for an answer no rule marks
  ("漫画家" of "牛佬，香港漫画家，原名…").

The chooser is a softmax over the candidates of all the first citation's sentences, fitted
by ``rag fit`` on CMRC's fit half. A measured value of the asked kind ("9例" for 几例) wins
outright, as does the count a "几期"/"第几区" question asks for ("I/II期", "第三区"), and the name
after the cue a question for another name uses ("龙尖" of "俗名龙尖" for "…的俗名是什么？"; a name
after another cue comes next). A why, how, yes-or-no or list question is answered by a clause or
more (never a lone value), and that short answer is marked in its quote rather than said again
before it (``leads``). A statement (a writer's claim) asks nothing and gets no short answer.
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
from rag.ingest.splitter import split_spans
from rag.answer.answer_types import ALIAS_CUES, asked_types, value_pattern, value_spans
from rag.answer.language import QUESTION_WORDS, asks_for_reason, asks_for_several
from rag.answer.sentence_rank import char_bigrams

# Clause ends inside a sentence (not the separator inside "6,476" or "10:30"), and the marks a span is trimmed of.
_CLAUSE_MARK = re.compile(r"[，；;。！？!?]|(?<!\d)[,:：]|[,:：](?!\d)")
_TRIM = "，,；;：:。！？!?、 \u3000\t"
_TITLE = re.compile(r"《[^》]{1,40}》|「[^」]{1,40}」|“[^”]{1,40}”|『[^』]{1,40}』")
_BARE_NUMBER = re.compile(r"[\d.,，]+\s*[万亿]?|[一二两三四五六七八九十百千万亿]+")
_NUMBER = re.compile(r"\d|[一二两三四五六七八九十百千万亿]")
# A calendar date, whole: "2009年9月27日", "2006年6月", "9月27日".
_DATE = re.compile(r"(?:公元前?)?(?:\d{1,4}|[一二三四五六七八九十〇零]{1,4})年(?:\d{1,2}月(?:\d{1,2}日)?)?|\d{1,2}月\d{1,2}日")
# A bare number and a range word just before a value: "15至" of "15至20厘米".
_RANGE_HEAD = re.compile(r"(?<![\d.,])(\d[\d.,]*)\s*(?:至|到|[-–~～])\s*$")
# What may stand between two values that together are one answer ("15日及8月16日", "5~32公里").
_VALUE_JOIN = re.compile(r"\s*(?:[-–—~～至到、]|及|和|或)?\s*")
# A measure word after a count question word: 分钟, 个, 名, 次, 届…
_UNIT = re.compile(r"(?:个|位|名|次|届|场|座|所|家|种|条|部|张|首|本|项|件|只|头|匹|层|分钟|小时|秒|天|周|年|岁|倍|人|米|公里|公尺|公分|英尺|厘米|平方公里|公顷|吨|公斤|元|美元|万|亿)")
_ENDS_ON_UNIT = re.compile(_UNIT.pattern + "$")
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
SPAN_KINDS = ("sentence", "clause", "run", "gap", "value", "title", "words")
# Kinds of word (jieba's part-of-speech tags) a span may hold, crossed with the question form:
# a who-question wants a person's name, a where-question a place.
POS_KINDS = ("person", "place", "organisation", "number", "time", "noun")
_POS_OF = {"nr": "person", "nrfg": "person", "nrt": "person", "ns": "place", "nt": "organisation",
           "m": "number", "mq": "number", "q": "number", "t": "time", "n": "noun", "nz": "noun", "eng": "noun"}
# Coarse part-of-speech tags of a span's first and last word (jieba's tags folded together):
# an answer rarely starts with a preposition ("于") or ends with a particle ("的").
BOUNDARY_TAGS = ("n", "nr", "ns", "nt", "nz", "m", "q", "t", "v", "a", "d", "p", "u", "c", "f", "r", "eng", "x", "other")
_COARSE_TAG = {"nrfg": "nr", "nrt": "nr", "mq": "m", "vn": "v", "vd": "v", "vg": "v", "vi": "v", "vq": "v",
               "ad": "a", "an": "a", "ag": "a", "uj": "u", "ul": "u", "uz": "u", "ud": "u", "ug": "u", "uv": "u",
               "s": "n", "nl": "n", "ng": "n", "tg": "t"}
# Which boundary tags are crossed with the question form (a who-question's answer ends in a name).
FIRST_TAGS_BY_FORM = ("n", "nr", "ns", "nt", "m", "t", "v", "p", "u")
LAST_TAGS_BY_FORM = ("n", "nr", "ns", "nt", "m", "q", "t", "v", "u")
# Longest run of words offered as a "words" candidate.
MAX_SPAN_WORDS = 8
# Matching the question's words next to its question word: at least this many characters.
MIN_CONTEXT = 2
MAX_CONTEXT = 12
# Kinds of value that are a number with a unit: when one is asked for, a value of that kind
# is the answer. (Dates, places and organisations are looser; the chooser weighs those.)
MEASURED_KINDS = ("dose", "duration", "times", "count", "cost", "measure", "age", "temperature")
# Longest short answer that goes before the quote in the answer text.
MAX_SHORT_CHARS = 60
# A short answer that is more than this share of its sentence is not said before the quote:
# the quote already says it, and saying most of a sentence twice reads as repetition.
LEAD_MAX_SHARE = 0.6


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
                    f"pos_{tag}|{f}" for tag in POS_KINDS for f in QUESTION_FORMS] + [f"log_length|{f}" for f in QUESTION_FORMS] + [
                    "is_gap", "gap_f1", "inside_gap", "after_mark", "before_mark", "question_on_left",
                    "question_on_right", "log_words", "question_pairs_behind_best", "question_on_left_behind_best",
                    "question_on_right_behind_best", "holds_best_clause", "is_best_clause", "sentence_log_clauses",
                    "clause_with_asked_value"] + [
                    f"sentence_log_length|{k}" for k in SPAN_KINDS] + [
                    f"first_{t}" for t in BOUNDARY_TAGS] + [f"last_{t}" for t in BOUNDARY_TAGS] + [
                    f"first_{t}|{f}" for t in FIRST_TAGS_BY_FORM for f in QUESTION_FORMS] + [
                    f"last_{t}|{f}" for t in LAST_TAGS_BY_FORM for f in QUESTION_FORMS]


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
    or list question, or when the span is most of its sentence (LEAD_MAX_SHARE), the passage itself is the answer,
    and repeating part of it in front would only say it twice; the short answer is still given
    (and marked inside the quote on the page).
    """
    return (wants_short_answer(question) and len(short) <= MAX_SHORT_CHARS and short != passage
            and len(short) <= LEAD_MAX_SHARE * len(_sentence_holding(short, passage)))


def _sentence_holding(short: str, passage: str) -> str:
    """The sentence of ``passage`` (as the corpus splitter cuts it) that holds ``short``, or ``short`` when none does."""
    for a, b in split_spans(passage):
        if short in passage[a:b]:
            return passage[a:b].rstrip(_TRIM)
    return short


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
        found += [Span("value", a, b) for a, b in value_spans(kind, sentence[:body])]
    found += [Span("value", m.start(), m.end()) for m in _GENERIC_VALUE.finditer(sentence[:body])]
    found += [Span("value", *joined) for joined in _joined_values(sentence[:body], found)]
    found += [Span("value", m.start(), m.end()) for m in _DATE.finditer(sentence[:body])]
    if (counted := counted_value(question)) is not None:
        found += [Span("value", m.start(), m.end()) for m in counted.finditer(sentence[:body])]
    found += [Span("title", m.start(), m.end()) for m in _TITLE.finditer(sentence[:body])]
    found = [w for s in found for w in (_to_word_ends(s, sentence) if s.kind == "value" else [s])]
    found += [Span("value", s.start, end) for s in found if s.kind == "value"  # "100米至2,800米的" -> "…米"
              for end in [len(sentence[:s.end].rstrip(_PARTICLES))] if s.start < end < s.end]
    found += [Span("value", m.start(1), s.end) for s in found if s.kind == "value"  # "15至" + "20厘米"
              for m in [_RANGE_HEAD.search(sentence, 0, s.start)] if m]
    found += [s for s in _word_runs(sentence, body) if sentence[s.start:s.end] not in question]
    return _distinct(_trimmed(sentence, found), question, sentence), gap


def _word_runs(sentence: str, body: int) -> list[Span]:
    """Runs of one to MAX_SPAN_WORDS words of ``sentence[:body]`` that start on a word and stay inside one clause."""
    words = [w for w in tagged_words(sentence) if w[1] <= body]
    runs = []
    for i, (start, _, _) in enumerate(words):
        if sentence[start] in _TRIM:
            continue
        for j in range(i, min(len(words), i + MAX_SPAN_WORDS)):
            if _CLAUSE_MARK.search(sentence, words[j][0], words[j][1]):
                break
            runs.append(Span("words", start, words[j][1]))
    return runs


@lru_cache(maxsize=256)
def word_bounds(sentence: str) -> frozenset[int]:
    """Offsets where a jieba word starts or ends in ``sentence`` (and its two ends)."""
    return frozenset({0, len(sentence)} | {b for _, a, z in segment.tokenize(sentence) for b in (a, z)})


@lru_cache(maxsize=256)
def word_kinds(sentence: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, kind) of the words of ``sentence`` whose part of speech is one of POS_KINDS."""
    return tuple((a, b, _POS_OF[tag]) for _, tag, a, b in _tags(sentence) if tag in _POS_OF)


@lru_cache(maxsize=256)
def _tags(sentence: str) -> tuple[tuple[str, str, int, int], ...]:
    """jieba's part-of-speech tagging of ``sentence``, done once per sentence (it is the slow step)."""
    return tuple(segment.tagged(sentence))


@lru_cache(maxsize=256)
def tagged_words(sentence: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, coarse tag) of every jieba word of ``sentence``, tags folded to BOUNDARY_TAGS."""
    out = []
    for _, tag, a, b in _tags(sentence):
        tag = _COARSE_TAG.get(tag, tag)
        out.append((a, b, tag if tag in BOUNDARY_TAGS else "other"))
    return tuple(out)


def _to_word_ends(span: Span, sentence: str) -> list[Span]:
    """A value span shrunk to whole words: the pattern's loose tail must not take half a word
    ("9例患" of "9例患者" -> "9例"). A value that ends on its measure word inside a longer word
    is kept as well: jieba's "天内" must not cut "1–2天" down to "1–2"."""
    bounds = word_bounds(sentence)
    end = max((b for b in bounds if span.start < b <= span.end), default=span.end)
    shrunk = Span(span.kind, span.start, end)
    if end < span.end and _ENDS_ON_UNIT.search(sentence, span.start, span.end):
        return [shrunk, span]
    return [shrunk]


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
    spans that cut a bracket, a quotation or a number in half ("1日" of "21日", "476名" of "6,476名")."""
    seen, out = set(), []
    for s in spans:
        text = sentence[s.start:s.end]
        if (s.start, s.end) in seen or (s.kind == "value" and text in question) or not balanced(text):
            continue
        if _cuts_number(sentence, s.start, s.end):  # jieba cuts "6,476" into 6 / , / 476
            continue
        seen.add((s.start, s.end))
        out.append(s)
    return out


# Two values that together are one, a range: "100米至2,800米", "15至20厘米", "5~32公里".
_RANGE = re.compile(r"(.+?)\s*(?:至|到|[-–~～])\s*(.+)")


def _is_value_of(text: str, patterns: list[re.Pattern]) -> bool:
    """Whether ``text`` is, whole, a number-bearing value of one of the patterns (a count, not a bare
    "150万"), or a range of them whose first end may leave the unit to the second ("15至20厘米")."""
    if not _NUMBER.search(text) or _BARE_NUMBER.fullmatch(text):
        return False
    if any(p.fullmatch(text) for p in patterns):
        return True
    ends = _RANGE.fullmatch(text)
    return bool(ends) and any(p.fullmatch(ends[2]) and (p.fullmatch(ends[1]) or _BARE_NUMBER.fullmatch(ends[1]))
                              for p in patterns)


def _cuts_number(sentence: str, start: int, end: int) -> bool:
    """Whether a span starts or ends inside a number: a run of digits, or one with a separator
    between digits ("476名" of "6,476名", "6" of "6,476")."""
    def inside(at: int) -> bool:  # a number goes on across position ``at`` (between at - 1 and at)
        if not (0 < at < len(sentence)):
            return False
        if sentence[at - 1].isdigit() and sentence[at].isdigit():
            return True
        return (sentence[at - 1] in ",." and at >= 2 and sentence[at - 2].isdigit() and sentence[at].isdigit()) or (
            sentence[at] in ",." and at + 1 < len(sentence) and sentence[at - 1].isdigit() and sentence[at + 1].isdigit())
    return inside(start) or inside(end)


def features(question: str, sentence: str, spans: list[Span], gap: Gap | None) -> np.ndarray:
    """The chooser's feature matrix: one row per candidate span, columns as ``feature_names()``.

    Columns are computed for all spans at once from per-character prefix sums (a sentence has
    a few hundred candidates once word runs are offered, and this runs on every answer).
    """
    form = question_form(question)
    names = _feature_index()
    n, cols = len(spans), np.zeros((len(spans), len(names)))
    if not n:
        return cols
    a = np.array([s.start for s in spans])
    b = np.array([s.end for s in spans])
    kind = np.array([SPAN_KINDS.index(s.kind) for s in spans])
    is_form = np.array([form == f for f in QUESTION_FORMS], dtype=float)
    length = (b - a).astype(float)
    body = max(1, len(sentence.rstrip(_TRIM)))
    asked = [value_pattern(k) for k in asked_types(question)]
    text = sentence.lower() if len(sentence.lower()) == len(sentence) else sentence  # offsets must stay put
    q_pairs = char_bigrams(QUESTION_WORDS.sub(" ", question))
    q_chars = {c for c in question.lower() if c.isalnum()}
    alnum = np.array([c.isalnum() for c in text] + [False])
    pair_hit = alnum[:-1] & alnum[1:] & np.array([text[i:i + 2] in q_pairs for i in range(len(text))])
    pairs_before = np.r_[0, np.cumsum(pair_hit)]
    letters_before = np.r_[0, np.cumsum(alnum[:-1])]
    known_before = np.r_[0, np.cumsum([c.isalnum() and c in q_chars for c in text])]
    letters = letters_before[b] - letters_before[a]
    pairs = (pairs_before[np.maximum(b - 1, a)] - pairs_before[a]) / max(1, len(q_pairs))

    cols[np.arange(n), kind * len(QUESTION_FORMS) + QUESTION_FORMS.index(form)] = 1.0

    def put(name: str, values) -> None:
        cols[:, names[name]] = values

    put("question_pairs", np.minimum(pairs, 1.0))
    put("from_question", (known_before[b] - known_before[a]) / np.maximum(letters, 1))
    put("log_length", np.log1p(length))
    put("share_of_sentence", length / body)
    if gap is not None:
        put("holds_gap", (a <= gap.start) & (gap.end <= b))
        put("touches_gap", (a < gap.end) & (gap.start < b))
        put("gap_context", math.log1p(gap.left + gap.right) * (kind == SPAN_KINDS.index("gap")))
        put("gap_both_sides", (kind == SPAN_KINDS.index("gap")) * float(gap.left > 0 and gap.right > 0))
    put("at_start", a == 0)
    put("at_end", b >= body)
    # How well the sentence as a whole matches the question: of several cited sentences,
    # the answer is in the one the question restates.
    put("sentence_question_pairs", len(char_bigrams(sentence) & q_pairs) / max(1, len(q_pairs)))
    on_bound = np.zeros(len(sentence) + 1, dtype=bool)
    on_bound[list(word_bounds(sentence))] = True
    put("cuts_word", (~on_bound[a]).astype(float) + (~on_bound[b]))
    put("ends_with_particle", [sentence[e - 1] in _PARTICLES for e in b])
    for i, s in enumerate(spans):
        span_text = sentence[s.start:s.end]
        if asked:
            cols[i, names["holds_asked_value"]] = any(p.search(span_text) for p in asked)
            # A whole value of the asked kind ("9例" for 几例), and a number without its unit ("150万").
            cols[i, names["is_asked_value"]] = s.kind == "value" and _is_value_of(span_text, asked)
        cols[i, names["starts_with_link"]] = bool(_LEADING_LINK.match(span_text))
        if _NUMBER.match(span_text):
            cols[i, names["bare_number"]] = bool(_BARE_NUMBER.fullmatch(span_text))
    at = names["log_length|" + QUESTION_FORMS[0]]
    cols[:, at:at + len(QUESTION_FORMS)] = np.log1p(length)[:, None] * is_form
    tagged = word_kinds(sentence)
    for k, pos in enumerate(POS_KINDS):
        starts = np.array([x for x, _, t in tagged if t == pos], dtype=int)
        ends = np.array([y for _, y, t in tagged if t == pos], dtype=int)
        held = np.searchsorted(ends, b, side="right") > np.searchsorted(starts, a, side="left")
        at = names[f"pos_{pos}|{QUESTION_FORMS[0]}"]
        cols[:, at:at + len(QUESTION_FORMS)] = held[:, None] * is_form
    _boundary_features(question, sentence, spans, gap, form, cols, (a, b, kind, body))
    return cols


@lru_cache(maxsize=1)
def _feature_index() -> dict[str, int]:
    return {name: i for i, name in enumerate(feature_names())}


def _boundary_features(question: str, sentence: str, spans: list[Span], gap: Gap | None, form: str,
                       cols: np.ndarray, arrays: tuple) -> None:
    """Fill the columns of where a span starts and ends: on the question-word gap, at a clause
    mark, beside words the question repeats, on what kind of word; and how it compares with the
    sentence's other candidates.

    The linear chooser cannot compare candidates by itself, so "how far behind the best candidate
    of this sentence" is given to it (``*_behind_best``), as is the clause the question restates most.
    """
    a, b, kind, body = arrays
    names, n = _feature_index(), len(spans)

    def put(name: str, values) -> None:
        cols[:, names[name]] = values

    words = tagged_words(sentence)
    if gap is not None:
        overlap = np.maximum(0, np.minimum(b, gap.end) - np.maximum(a, gap.start))
        put("is_gap", (a == gap.start) & (b == gap.end))
        put("gap_f1", 2 * overlap / (b - a + gap.end - gap.start))
        put("inside_gap", (gap.start <= a) & (b <= gap.end))
    is_mark = np.array([c in _TRIM for c in sentence] + [True])
    put("after_mark", (a == 0) | is_mark[np.maximum(a - 1, 0)])
    put("before_mark", (b >= body) | is_mark[b])
    left = {x: _question_left(question, sentence, x) for x in set(a.tolist())}
    right = {y: _question_right(question, sentence, y) for y in set(b.tolist())}
    on_left = np.log1p([left[x] for x in a])
    on_right = np.log1p([right[y] for y in b])
    put("question_on_left", on_left)
    put("question_on_right", on_right)
    put("question_on_left_behind_best", on_left - on_left.max())
    put("question_on_right_behind_best", on_right - on_right.max())
    word_starts = np.array([x for x, _, _ in words], dtype=int)
    put("log_words", np.log1p(np.searchsorted(word_starts, b) - np.searchsorted(word_starts, a)))
    pairs = cols[:, names["question_pairs"]]
    put("question_pairs_behind_best", pairs - pairs.max())
    clauses = np.flatnonzero(kind == SPAN_KINDS.index("clause"))
    if len(clauses):
        best = clauses[int(np.argmax(pairs[clauses]))]
        put("holds_best_clause", (a <= a[best]) & (b[best] <= b))
        put("is_best_clause", (a == a[best]) & (b == b[best]))
    put("sentence_log_clauses", math.log1p(len(clauses)) * (kind == SPAN_KINDS.index("sentence")))
    put("clause_with_asked_value", cols[:, names["holds_asked_value"]] * (kind == SPAN_KINDS.index("clause")))
    cols[np.arange(n), names[f"sentence_log_length|{SPAN_KINDS[0]}"] + kind] = math.log1p(body)
    first = {x: t for x, _, t in words}
    last = {y: t for _, y, t in words}
    first_tags = [first.get(x, "other") for x in a.tolist()]
    last_tags = [last.get(y, "other") for y in b.tolist()]
    rows = np.arange(n)
    cols[rows, [names[f"first_{t}"] for t in first_tags]] = 1.0
    cols[rows, [names[f"last_{t}"] for t in last_tags]] = 1.0
    for tags, prefix, crossed in ((first_tags, "first", FIRST_TAGS_BY_FORM), (last_tags, "last", LAST_TAGS_BY_FORM)):
        hit = [i for i, t in enumerate(tags) if t in crossed]
        cols[hit, [names[f"{prefix}_{tags[i]}|{form}"] for i in hit]] = 1.0


def _question_left(question: str, sentence: str, start: int) -> int:
    """How many characters just left of ``start`` the question repeats (up to MAX_CONTEXT):
    an answer sits where the question's own words stop."""
    left = 0
    while left < MAX_CONTEXT and start - left - 1 >= 0 and sentence[start - left - 1:start] in question:
        left += 1
    return left


def _question_right(question: str, sentence: str, end: int) -> int:
    """How many characters just right of ``end`` the question repeats (up to MAX_CONTEXT)."""
    right = 0
    while right < MAX_CONTEXT and end + right + 1 <= len(sentence) and sentence[end:end + right + 1] in question:
        right += 1
    return right


# "几期", "第几区", "多少所": a question word and the measure word it counts (dates, times of day and
# ages are read by their own answer types).
_COUNTED = re.compile(r"(第)?(?:几|多少)([个位名例次期区条座所家种项件只头匹张首本部层届场类股处门级节章篇段台辆艘架枚颗粒"
                      r"支根片块份批组队对套轮局盘代任集季册卷幅栋幢间道])")
_COUNT = r"(?:\d+|[一二两三四五六七八九十百千万]+|[IVX]+(?:/[IVX]+)?)"


def counted_value(question: str) -> re.Pattern | None:
    """The pattern of a value that answers a question counting with a measure word: ``"是几期试验？"``
    -> matches "I/II期"; ``"属于第几区？"`` -> matches "第三区"; None for other questions."""
    match = _COUNTED.search(question)
    if match is None:
        return None
    return re.compile(("第" if match[1] else "第?") + _COUNT + r"\s*" + re.escape(match[2]))


def choose(question: str, sentences: list[str], chooser: Chooser) -> tuple[int, int, int] | None:
    """The short answer as (sentence number, start, end) among ``sentences`` (those of the first
    citation), or None for a statement (a writer's claim asks nothing) or when nothing is a candidate.

    A measured value of the asked kind ("9例" for 几例, "1,000米" for 多长), the count a counting question
    asks for ("I/II期" for 几期, ``counted_value``), or for a question asking another name the name
    after its cue (``_alias_ranks``), beats any other candidate in any of the sentences; otherwise the
    chooser's best candidate wins.
    """
    if not QUESTION_WORDS.search(question):
        return None
    kinds = asked_types(question)
    measured = [value_pattern(kind) for kind in kinds if kind in MEASURED_KINDS]
    counted = counted_value(question)
    best: tuple[int, float, int, Span] | None = None
    for n, sentence in enumerate(sentences):
        spans, gap = candidates(question, sentence)
        if not spans:
            continue
        scores = features(question, sentence, spans, gap) @ chooser.weights
        # Whatever proposed it: the question-word gap "6,476名" is the same value as the pattern's, and
        # it is the one next to the question's words ("容纳…观众", not "可容606名" further on).
        names = _alias_ranks(question, sentence) if "alias" in kinds else {}
        typed = [2 if (_is_value_of(sentence[s.start:s.end], measured) or _is_count(sentence[s.start:s.end], counted))
                 and not _cuts_number(sentence, s.start, s.end)
                 else names.get((s.start, s.end), 0) for s in spans]
        k = max(range(len(spans)), key=lambda i: (typed[i], scores[i]))
        if best is None or (typed[k], scores[k]) > best[:2]:
            best = (typed[k], float(scores[k]), n, spans[k])
    return None if best is None else (best[2], best[3].start, best[3].end)


def _is_count(text: str, counted: re.Pattern | None) -> bool:
    """Whether ``text`` is, whole, the counted value a "几期"/"第几区" question asks for."""
    return counted is not None and bool(counted.fullmatch(text))


def _alias_ranks(question: str, sentence: str) -> dict[tuple[int, int], int]:
    """For a question asking another name, the names in ``sentence`` by (start, end): 2 for one after
    the cue the question uses ("俗名" in "…的俗名是什么？": "龙尖" of "又称蓝线白𫚭，俗名龙尖"), 1 for one
    after another cue."""
    ranks = {}
    for match in value_pattern("alias").finditer(sentence):
        before = sentence[:match.start()]  # the match starts right after its cue
        # "英文全称" answers "英文名是什么？": a cue counts as the question's when its first two characters are there.
        own = any(before.endswith(cue) and cue[:2] in question for cue in ALIAS_CUES)
        ranks[match.span("value")] = 2 if own else 1
    return ranks
