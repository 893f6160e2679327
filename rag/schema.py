"""The machine form of answers and passages, shared by the CLI (--json) and the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Span(BaseModel):
    """An exact passage of a document: ``document.text[start:end] == text``."""

    id: str
    doc_id: str
    section: str
    text: str
    start: int
    end: int
    page: int | None = Field(default=None, description="The page (from 1) the span starts on, for a PDF; null for unpaged documents.")
    page_end: int | None = Field(default=None, description="The page the span ends on, when a PDF span crosses pages.")
    references: dict[str, str] | None = Field(
        default=None, description="The document as a bibliography entry: {gbt7714: GB/T 7714-2015, apa: APA 7}.")
    score: float = Field(description="Relevance as a share of the best passage of the same answer or search: "
                                     "1 for the best, 0 to 1 for the others. Not comparable across questions.")


class Citation(Span):
    """A cited passage; ``n`` is its marker [n] in the answer."""

    n: int


class ShortAnswer(BaseModel):
    """The few words that answer the question: an exact span inside the first citation."""

    text: str
    doc_id: str
    start: int
    end: int


class TableCell(BaseModel):
    """One quoted value of a study table: an exact span, with the marker [n] of its citation."""

    text: str
    doc_id: str
    start: int
    end: int
    n: int


class TableRow(BaseModel):
    """One field across the studies: per study, its quoted values (empty: the document does not give it)."""

    field: str
    cells: list[list[TableCell]]


class StudyTable(BaseModel):
    """Studies side by side (a contrast, a comparison or a list), every value cited."""

    studies: list[str] = Field(description="The studies' ids, one per column.")
    labels: list[str] = Field(description="How the document names each study.")
    rows: list[TableRow]


class Answer(BaseModel):
    """A short answer whose sentences carry [n] markers pointing into ``citations``."""

    question: str
    answer: str
    answerable: bool
    citations: list[Citation] = Field(default_factory=list)
    # Null where no short span answers (a why or a list question): never a guess.
    short_answer: ShortAnswer | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    # The query actually searched, when a follow-up was rewritten with the conversation.
    retrieval_query: str | None = None
    # Set in generative mode when the model cited passages that do not exist.
    removed_markers: list[int] | None = None
    # Studies side by side, when the question contrasts, compares or lists studies (rag.studies).
    table: StudyTable | None = None


class Passage(Span):
    """A ranked passage for writers: where a claim's source text is, ready to quote."""

    rank: int
