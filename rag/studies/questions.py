"""What a question asks of the study records: which studies, which fields, and what kind of answer.

Only clear study questions are taken; anything else is left to the ordinary answer path.

    "为什么Bang和Chung的研究结论不一致？"  -> contrast of bang-2005 and chung-2021
    "比较Kim和Xie的剂量"                  -> comparison of dose
    "哪些研究针对阿尔茨海默病？"            -> list of the studies whose disease it names
    "那对照组有多少人？" (after Chung)     -> the field of the study the conversation is about
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rag.answer.answer_types import asked_types
from rag.answer.language import is_english, named_entities
from rag.answer.rewrite import is_follow_up
from rag.studies.fields import STAGE
from rag.studies.records import Study

_WHY = re.compile(r"为什么|为何|什么原因|原因是|why", re.I)
_DISAGREE = re.compile(r"不一致|矛盾|不同|相反|差异|分歧|冲突|disagree|differ|conflict|contradict|inconsistent", re.I)
_COMPARE = re.compile(r"比较|对比|相比|比一比|区别|差别|不同|差异|compare|comparison|versus|\bvs\.?\b|differ", re.I)
_WHICH = re.compile(r"哪些|哪几项|哪几个|有哪些|which|what studies|list", re.I)
_STUDY_WORD = re.compile(r"研究|试验|临床|studies|study|trials?", re.I)
_TREATMENT = re.compile(r"治疗|疗法|用了什么|用的什么|treat|therap", re.I)
_CONTROL = re.compile(r"对照组|安慰剂组|control group|placebo group", re.I)

# Words of a question -> the record fields they ask about, in table order.
FIELD_WORDS: list[tuple[re.Pattern, tuple[str, ...]]] = [
    (re.compile(r"疾病|什么病|病种|disease|condition", re.I), ("disease",)),
    (re.compile(r"病程|分期|阶段|急性|慢性|stage", re.I), ("stage",)),
    (re.compile(r"设计|随机|盲法|开放标签|单臂|design|randomi[sz]ed", re.I),
     ("design.randomised", "design.controlled", "design.blinded", "design.open_label", "design.single_arm", "design.phase")),
    (re.compile(r"多少人|几个人|多少例|几例|多少名|几名|人数|样本|规模|参加|纳入|how many|patients|sample size", re.I),
     ("patients", "arms")),
    (re.compile(r"细胞|来源|产品|外泌体|cells?\b|source|product", re.I), ("cells", "donor", "tissue")),
    (re.compile(r"途径|方式|怎么给|如何给|注射|输注|route|delivered|administ", re.I), ("route",)),
    (re.compile(r"剂量|多少细胞|多少个细胞|dose|dosage", re.I), ("dose",)),
    (re.compile(r"随访|多久|多长时间|观察期|follow", re.I), ("follow_up",)),
    (re.compile(r"安全|不良|副作用|safety|adverse|side effect", re.I), ("safety",)),
    (re.compile(r"疗效|效果|有效|结局|efficacy|outcome|effect", re.I), ("efficacy",)),
    (re.compile(r"局限|不足|limitation", re.I), ("limitations",)),
]
# What a contrast shows when the question names no field: how studies can differ.
CONTRAST_FIELDS = ("disease", "stage", "design.randomised", "design.controlled", "design.blinded", "design.open_label",
                   "design.single_arm", "design.phase", "patients", "cells", "donor", "tissue", "route", "dose",
                   "follow_up", "safety", "efficacy", "limitations")
# Follow-ups the records answer: numbers of patients, follow-up time and design. A dose or route follow-up
# is left to the ordinary answer, whose short answer finds the figure in the subject's sentence; and
# "那疗效能确定吗？" needs more than a field.
# The fields that hold the kind of value a question asks for ("几例" a count, "多久" a duration).
_VALUE_FIELDS = {"count": ("patients", "arms"), "duration": ("follow_up",)}
FOLLOW_UP_FIELDS = {"patients", "arms", "follow_up", "design.randomised", "design.controlled", "design.blinded",
                    "design.open_label", "design.single_arm", "design.phase"}


@dataclass(frozen=True)
class StudyQuestion:
    """A question the records answer: its kind (contrast, compare, list, field, control), the studies
    and the fields (in table order)."""

    kind: str
    studies: tuple[Study, ...]
    fields: tuple[str, ...]


def might_ask(question: str, history: Sequence[dict], direct: bool = True) -> bool:
    """A cheap first look: whether the question could be a study question at all (most are not)."""
    return bool(_COMPARE.search(question) or _DISAGREE.search(question) or _WHICH.search(question)
                or (history and is_follow_up(question))
                or (direct and named_entities(question) and set(asked_fields(question)) & FOLLOW_UP_FIELDS))


def parse(question: str, history: Sequence[dict], studies: list[Study], direct: bool = True) -> StudyQuestion | None:
    """The study question ``question`` asks, or None when it is not one the records answer
    (``direct``: also a value asked of one named study, not only as a follow-up)."""
    named = named_studies(question, studies)
    fields = asked_fields(question)
    if len(named) == 2 and _WHY.search(question) and _DISAGREE.search(question):
        return StudyQuestion("contrast", tuple(named), fields or CONTRAST_FIELDS)
    if len(named) >= 2 and _COMPARE.search(question):
        return StudyQuestion("compare", tuple(named), fields or CONTRAST_FIELDS)
    if not named and _WHICH.search(question) and _STUDY_WORD.search(question):
        listed = by_disease(question, studies)
        if listed:
            wanted = fields or (("cells", "route", "dose") if _TREATMENT.search(question) else ("disease", "design.phase", "patients"))
            return StudyQuestion("list", tuple(listed), wanted)
    if not named and history and is_follow_up(question):
        subject = conversation_subject(history, studies)
        if subject is not None and _CONTROL.search(question):
            return StudyQuestion("control", (subject,), ("arms",))
        if subject is not None and fields and set(fields) <= FOLLOW_UP_FIELDS:
            return StudyQuestion("field", (subject,), fields)
    if (direct and len(named) == 1 and fields and not is_english(question)
            and _record_answers_whole(question, named[0], fields)):
        # "Macêdo的研究有几例患者？": the record holds the number even when it sits sentences after the
        # name, where retrieval of the question's words does not reach. Only a question asking for a
        # value (a count, a duration) is taken: "What kind of stroke did the patients in Bang et al.
        # have?" names patients without asking how many. A field the record lacks is left to the
        # ordinary answer, which may still find it; so is an English question, which the ordinary
        # answer frames as quoting Chinese documents.
        return StudyQuestion("field", tuple(named), fields)
    return None


def _record_answers_whole(question: str, study: Study, fields: tuple[str, ...]) -> bool:
    """Whether a question asks only for values one study's record states: each kind of value it asks
    for (a count, a duration) has a stated field, and it names no other field ("高剂量组有几例患者？
    每次给多少细胞？" also asks for a dose, which is left to the ordinary answer)."""
    kinds = asked_types(question)
    if not kinds or any(kind not in _VALUE_FIELDS for kind in kinds):
        return False
    wanted = {f for kind in kinds for f in _VALUE_FIELDS[kind]}
    return set(fields) <= wanted and all(any(study.field(f) for f in _VALUE_FIELDS[kind]) for kind in kinds)


def asked_fields(question: str) -> tuple[str, ...]:
    """The record fields a question's words ask about, in table order. ``"比较A和B的剂量"`` -> ("dose",)."""
    out: list[str] = []
    for pattern, names in FIELD_WORDS:
        if pattern.search(question):
            out.extend(n for n in names if n not in out)
    return tuple(out)


def named_studies(question: str, studies: list[Study]) -> list[Study]:
    """The studies a question names by author (accents optional, "Macedo" is "Macêdo"), a year
    next to the name choosing among an author's studies; in the order the question names them."""
    plain = _plain(question)
    hits: list[tuple[int, Study]] = []
    for study in studies:
        # A plain substring test first: a large corpus has tens of thousands of studies, few named.
        if not study.author or _plain(study.author) not in plain:
            continue
        m = re.search(r"(?<![a-z])" + re.escape(_plain(study.author)) + r"(?![a-z])", plain)
        if m:
            hits.append((m.start(), study))
    by_author: dict[str, list[tuple[int, Study]]] = {}
    for at, study in hits:
        by_author.setdefault(_plain(study.author), []).append((at, study))
    chosen = []
    for same in by_author.values():
        dated = [(at, s) for at, s in same if str(s.year) in question]
        chosen.extend(dated or same)
    return [s for _, s in sorted(chosen, key=lambda p: p[0])]


def by_disease(question: str, studies: list[Study]) -> list[Study]:
    """The studies whose disease, without its stage words, the question names."""
    out = []
    for study in studies:
        if study.disease is None:
            continue
        core = STAGE.sub("", study.disease.text).strip("的 ")
        if len(core) >= 2 and core.lower() in question.lower():
            out.append(study)
    return out


def conversation_subject(history: Sequence[dict], studies: list[Study]) -> Study | None:
    """The one study the conversation is about: named in the latest user turn that names any."""
    for turn in reversed(history):
        if turn.get("role") != "user":
            continue
        named = named_studies(str(turn.get("content", "")), studies)
        if len(named) == 1:
            return named[0]
        if named:
            return None  # several: which one a follow-up means is not clear
    return None


@lru_cache(maxsize=1 << 16)  # authors repeat across questions
def _plain(text: str) -> str:
    """Lower case without accents: ``"Macêdo"`` -> ``"macedo"``."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()
