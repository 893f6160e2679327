"""Study records: one per study a document describes, every field an exact span or null.

Records are derived per document from its text and sentences (``detect`` + ``fields``), so an
index that changes one document at a time re-derives only that document: they are memoised on
the index by document hash, never saved.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, Field

from rag.ingest.corpus import REFERENCE, Document
from rag.studies import fields as f
from rag.studies.detect import Extent, find_studies

# The fields of a record in table order, with their Chinese and English headings.
FIELDS = {
    "label": ("研究", "study"), "disease": ("疾病", "disease"), "stage": ("病程/分期", "stage"),
    "design.randomised": ("随机", "randomised"), "design.controlled": ("对照", "control"),
    "design.blinded": ("盲法", "blinding"), "design.open_label": ("开放标签", "open-label"),
    "design.single_arm": ("单臂", "single-arm"), "design.phase": ("分期(试验)", "phase"),
    "patients": ("患者总数", "patients"), "arms": ("各组人数", "arms"), "cells": ("细胞/产品", "cell product"),
    "donor": ("来源(自体/异体)", "donor"), "tissue": ("组织来源", "tissue"), "route": ("给药途径", "route"),
    "dose": ("剂量", "dose"), "follow_up": ("随访", "follow-up"), "safety": ("安全性结果", "safety"),
    "efficacy": ("疗效结果", "efficacy"), "limitations": ("局限", "limitations"), "reference": ("文献标题", "reference"),
}


class Quote(BaseModel):
    """An exact span of the study's document: ``text == document[start:end]``, and its citation id."""

    text: str
    start: int
    end: int
    citation: str = Field(description="doc_id#start-end, the id a citation of this span carries.")


class Design(BaseModel):
    """Design traits as the document states them; a denial keeps its word ("缺乏随机化设计")."""

    randomised: Quote | None = None
    controlled: Quote | None = None
    blinded: Quote | None = None
    open_label: Quote | None = None
    single_arm: Quote | None = None
    phase: Quote | None = None


class Arm(BaseModel):
    """One arm the document numbers: its name, its count, and the phrase holding both ("对照组(15例患者)")."""

    name: Quote
    n: Quote
    span: Quote


class Study(BaseModel):
    """One study: where the document names it, and each field it states (null when it does not)."""

    id: str
    doc_id: str
    author: str | None = Field(description="The first author's surname; null for an unnamed trial.")
    year: int | None = Field(description="The year the text gives for it ('同年' resolved to the study before).")
    label: Quote
    start: int = Field(description="Where the study's first sentence starts.")
    end: int = Field(description="Where its last sentence ends.")
    disease: Quote | None = None
    stage: Quote | None = None
    design: Design = Field(default_factory=Design)
    patients: Quote | None = None
    arms: list[Arm] = Field(default_factory=list)
    cells: Quote | None = None
    donor: Quote | None = None
    tissue: Quote | None = None
    route: Quote | None = None
    dose: Quote | None = None
    follow_up: Quote | None = None
    safety: Quote | None = None
    efficacy: Quote | None = None
    limitations: Quote | None = None
    reference: Quote | None = None

    def field(self, name: str) -> Quote | list[Arm] | None:
        """A field by its table name ("dose", "design.phase", "arms")."""
        if name.startswith("design."):
            return getattr(self.design, name.split(".", 1)[1])
        return getattr(self, name)


def extract(document: Document) -> list[Study]:
    """The study records of one document, in order (ids unique within it)."""
    studies, used = [], set()
    for extent in find_studies(document):
        study = _record(document, extent)
        study.id = _unique(study.id, used)
        used.add(study.id)
        studies.append(study)
    return studies


def _record(document: Document, extent: Extent) -> Study:
    """The record of one study extent."""
    text = document.text
    body = [(s.start, s.end) for s in extent.sentences]
    def q(span: tuple[int, int] | None) -> Quote | None:
        if span is None:
            return None
        return Quote(text=text[span[0]:span[1]], start=span[0], end=span[1], citation=f"{document.doc_id}#{span[0]}-{span[1]}")

    limits = f.limitations(text, body)
    skip = {limits[0]} if limits else set()
    arms = f.arms(text, body)
    cells = f.product(text, body)
    condition = f.disease(text, body)
    m = extent.mention
    return Study(
        id=_slug(m.author, m.year), doc_id=document.doc_id, author=m.author, year=m.year,
        label=q((m.start, m.end)), start=body[0][0], end=body[-1][1],
        disease=q(condition), stage=q(f.stage(text, body, condition)),
        design=Design(**{k: q(v) for k, v in f.design(text, body).items()}),
        patients=q(f.total(text, body, {n[0] for _, n in arms})),
        arms=[Arm(name=q(a), n=q(n), span=q(f.arm_phrase(text, a, n))) for a, n in arms],
        cells=q(cells), donor=q(f.within_or_first(f.DONOR, text, cells, body)),
        tissue=q(f.within_or_first(f.TISSUE, text, cells, body)),
        route=q(f.route(text, body)), dose=q(f.dose(text, body)), follow_up=q(f.follow_up(text, body)),
        safety=q(f.outcome(text, body, f.SAFETY, f.EFFICACY, skip)),
        efficacy=q(f.outcome(text, body, f.EFFICACY, f.SAFETY, skip)),
        limitations=q(limits), reference=q(_reference(document, extent)),
    )


def _reference(document: Document, extent: Extent) -> tuple[int, int] | None:
    """The cited work's title as the text gives it beside the study, else the reference-list entry
    naming its author and year."""
    if extent.title is not None:
        return extent.title.start, extent.title.end
    m = extent.mention
    if m.author is None:
        return None
    text = document.text
    for s in document.sentences:
        if s.role != REFERENCE:
            continue
        # A list entry is split into sentences at ". ": its line is the entry.
        start = text.rfind("\n", 0, s.start) + 1
        end = len(text) if (nl := text.find("\n", s.end)) < 0 else nl
        line = text[start:end]
        if m.author in line and str(m.year) in line:
            return start + len(line) - len(line.lstrip()), end - (len(line) - len(line.rstrip()))
    return None


def _slug(author: str | None, year: int | None) -> str:
    """A readable id: ``"Macêdo", 2024`` -> ``"macedo-2024"``; an unnamed trial is ``"trial-2024"``."""
    name = unicodedata.normalize("NFKD", author or "trial").encode("ascii", "ignore").decode().lower()
    name = re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "study"
    return f"{name}-{year}" if year else name


def _unique(study_id: str, used: set[str]) -> str:
    """``study_id``, or with "-2", "-3"… when already taken."""
    n, candidate = 1, study_id
    while candidate in used:
        n += 1
        candidate = f"{study_id}-{n}"
    return candidate
