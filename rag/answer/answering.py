"""What every answerer shares: the seam it plugs into, the evidence it answers from, the one
no-answer text, and the one way a span of a document becomes a quoted passage or a citation.

Two answerers fill the seam: ``rag.answer.extractive_answer.ExtractiveAnswerer`` quotes the chosen
sentences; ``rag.answer.generative.ChatModelAnswerer`` has a chat model write from the retrieved chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from rag.answer.answer_models import AnswerModels
from rag.answer.extractive import Selection
from rag.indexing.index import Index
from rag.ingest.formats import page_of
from rag.answer.language import is_english
from rag.answer.retriever import Retrieval
from rag.schema import Answer, Citation, Span

NO_ANSWER_ZH = "文档中没有找到能回答这个问题的内容。"
NO_ANSWER_EN = "The documents do not answer this question."
NO_DOCUMENTS_ZH = "没有符合所选范围的文档，请检查所选的文档。"
NO_DOCUMENTS_EN = "No indexed document matches the chosen documents."

S = TypeVar("S", bound=Span)


@dataclass(frozen=True)
class Evidence:
    """What one question is answered from, all read against the same build."""

    index: Index
    models: AnswerModels
    retrieval: Retrieval  # the ranked chunks
    selection: Selection  # the chosen passages, the answering one first


class Answerer(Protocol):
    """Turns the evidence for a question the documents answer into the cited answer."""

    def answer(self, question: str, evidence: Evidence) -> Answer:
        """The answer whose [n] markers point into its citations (or an abstention)."""
        ...


def no_documents(question: str) -> Answer:
    """The answer when a question is scoped to documents none of which is indexed."""
    return Answer(question=question, answer=NO_DOCUMENTS_EN if is_english(question) else NO_DOCUMENTS_ZH, answerable=False)


def no_answer(question: str) -> Answer:
    """The abstention, in the question's language."""
    return Answer(question=question, answer=NO_ANSWER_EN if is_english(question) else NO_ANSWER_ZH, answerable=False)


def quote(kind: type[S], index: Index, doc_id: str, section: str, start: int, end: int, **fields) -> S:
    """A ``kind`` (Citation or Passage) of the span ``start..end`` of ``doc_id``: its id and exact original text."""
    text = index.documents[doc_id].text
    page, last = page_of(text, start), page_of(text, max(start, end - 1))
    return kind(id=f"{doc_id}#{start}-{end}", doc_id=doc_id, section=section, text=text[start:end],
                start=start, end=end, page=page, page_end=last if last != page else None, **fields)


def cite(index: Index, n: int, doc_id: str, section: str, start: int, end: int, score: float) -> Citation:
    """The citation [n] of a span of a document."""
    return quote(Citation, index, doc_id, section, start, end, n=n, score=round(score, 6))
