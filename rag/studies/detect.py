"""Where a document names a study, and which sentences continue it.

A study opens at a sentence that names it: an author with a year ("Bang等人于2005年",
"Levy等人(2019年)", "Smith et al. (2018)") or an unnamed trial with a year or "同年"
("2024年，一项…I期临床试验"). It takes the sentences of its paragraph, and later paragraphs
that carry it on ("该研究…", "结果显示…", "其中…", or the one right after its reference
title), until the next study, a section change, a summary ("综上所述…") or a sentence that
names studies already described (a comparison such as "Bang等人(2005)与Chung等人(2021)…").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.ingest.corpus import REFERENCE, Document, Sentence

# A surname (Latin letters, accents allowed) followed by "et al." in either language.
_AUTHOR = r"(?P<author>[A-Z][A-Za-z\u00C0-\u024F'’\-]{1,30})\s*(?:等人|等|及其同事|及同事|团队|et\s+al\.?)"
_YEAR = r"(?P<year>(?:19|20)\d{2})"
# "Bang等人于2005年", "Levy等人(2019年)", "Bang等人(2005)", "Smith et al. (2018)"
NAMED_AFTER = re.compile(_AUTHOR + r"\s*(?:于|在|[（(])?\s*" + _YEAR + r"\s*年?\s*[)）]?")
# "2018年，Müller及其同事…", "In 2018, Smith et al."
NAMED_BEFORE = re.compile(_YEAR + r"\s*年?[^。；;]{0,12}?" + _AUTHOR)
# An unnamed trial: "一项…试验" with a year or "同年" in the same sentence.
_TRIAL = re.compile(r"(?:一项|另一项|某项|一个)[^。；;]{0,60}?(?:试验|研究)")
_WHEN = re.compile(r"(?P<year>(?:19|20)\d{2})\s*年|(?P<same>同年|同一年|当年|次年|翌年)")
# What makes "一项…试验" a particular trial rather than a kind of study.
_PARTICULAR = re.compile(r"[IVⅠⅡⅢⅣ]+\s*(?:/\s*[IVⅠⅡⅢⅣ]+)?\s*期|随机|对照|开放标签|单臂|双盲|\d+\s*[例名位]")
# Openings that carry a study on into a new paragraph.
_CARRIES_ON = re.compile(
    r"^(?:该(?:研究|试验|疗法|团队|组)|本(?:研究|试验)|此项|这项|结果|其中|患者|受试者|参与者|作者|研究者|研究人员|"
    r"研究共|研究中|试验中|随访|给药|治疗后|术后|每次|所有|入组|[\u4e00-\u9fff]{0,4}组)"
)
# A naming sentence that points at the one before it.
_POINTS_BACK = re.compile(r"(?:这项|该项|此项|这一|该)")
# Openings that sum up several studies: the study before is over.
_SUMMARY = re.compile(r"^(?:综上|总之|总的来说|总而言之|综合来看|整体而言|由此可见)")


@dataclass
class Mention:
    """A study's name in a sentence: the span of its label, its author (None when unnamed) and year."""

    start: int
    end: int
    author: str | None
    year: int | None


@dataclass
class Extent:
    """One study: its naming mention, its sentences in order, and its reference title if the text gives one."""

    mention: Mention
    sentences: list[Sentence] = field(default_factory=list)
    title: Sentence | None = None


def named_mentions(text: str, start: int, end: int) -> list[Mention]:
    """Author-with-year mentions inside ``text[start:end]``.

    ``"Bang等人于2005年开展的一项研究"`` -> one mention, label ``"Bang等人于2005年"``.
    """
    found: dict[int, Mention] = {}
    for pattern in (NAMED_AFTER, NAMED_BEFORE):
        for m in pattern.finditer(text, start, end):
            a = m.start("author")
            if a not in found:
                found[a] = Mention(m.start(), m.end(), m.group("author"), int(m.group("year")))
    return sorted(found.values(), key=lambda m: m.start)


def unnamed_mention(text: str, sentence: Sentence, previous_year: int | None) -> Mention | None:
    """An unnamed particular trial opened by this sentence, from its year (or "同年") to its noun.

    ``"2024年，一项针对…的随机、双盲、安慰剂对照II期临床试验证实了…"`` -> label
    ``"2024年，一项针对…II期临床试验"``.
    """
    body = text[sentence.start:sentence.end]
    when, trial = _WHEN.search(body), _TRIAL.search(body)
    if not when or not trial or when.start() > trial.start() or not _PARTICULAR.search(body):
        return None
    if when.group("year"):
        year = int(when.group("year"))
    elif previous_year is None:
        return None
    else:  # "同年" is the year of the study before; "次年" the one after it
        year = previous_year + (1 if when.group("same") in ("次年", "翌年") else 0)
    return Mention(sentence.start + when.start(), sentence.start + trial.end(), None, year)


def find_studies(document: Document) -> list[Extent]:
    """Every study the document describes, in order of first mention."""
    text, studies, seen = document.text, [], set()
    current: Extent | None = None
    previous: Sentence | None = None
    for sentence in document.sentences:
        if not sentence.citable:
            break  # the reposting site's tail describes no study
        named = named_mentions(text, sentence.start, sentence.end)
        # A study named for the first time; others named beside it are ones it is compared with.
        new = list({(m.author.lower(), m.year): m for m in named if (m.author.lower(), m.year) not in seen}.values())
        if sentence.role == REFERENCE:
            if current is not None and current.title is None and sentence.section == current.sentences[0].section:
                current.title = sentence
            else:
                current = None
        elif named and len(new) != 1:
            current = None  # a comparison of, or a return to, studies already described
        elif new or (mention := unnamed_mention(text, sentence, studies[-1].mention.year if studies else None)):
            mention = new[0] if new else mention
            seen |= {(m.author.lower(), m.year) for m in named}
            current = Extent(mention, [sentence])
            if _points_back(text, sentence) and _same_paragraph(text, previous, sentence) and not _in_any(studies, previous):
                current.sentences.insert(0, previous)  # "一项研究报告，…。这项由Tanaka et al.完成的…"
            studies.append(current)
        elif current is not None and _continues(text, current, previous, sentence):
            current.sentences.append(sentence)
        else:
            current = None
        previous = sentence
    return studies


def _points_back(text: str, sentence: Sentence) -> bool:
    """Whether a naming sentence opens by pointing at the sentence before ("这项由…完成的研究")."""
    return bool(_POINTS_BACK.match(text, sentence.start))


def _same_paragraph(text: str, previous: Sentence | None, sentence: Sentence) -> bool:
    """Whether two sentences stand on one line."""
    return previous is not None and previous.role != REFERENCE and "\n" not in text[previous.end:sentence.start]


def _in_any(studies: list[Extent], sentence: Sentence | None) -> bool:
    """Whether a sentence already belongs to a study."""
    return any(sentence in s.sentences for s in studies)


def _continues(text: str, study: Extent, previous: Sentence | None, sentence: Sentence) -> bool:
    """Whether a sentence carries the open study on."""
    if sentence.section != study.sentences[0].section:
        return False
    body = text[sentence.start:sentence.end].lstrip("（(0123456789)） ")
    if _SUMMARY.match(body):
        return False
    if previous is not None and "\n" not in text[previous.end:sentence.start]:
        return previous in study.sentences  # the same paragraph
    # A new paragraph: right after the study's title, or opening with words that carry it on.
    return (previous is not None and previous is study.title) or bool(_CARRIES_ON.match(body))
