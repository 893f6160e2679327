"""The study-question router: consulted before the ordinary answer, it answers contrast, comparison,
listing and follow-up questions from the study records, and leaves every other question alone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rag.indexing.index import Index
from rag.schema import Answer
from rag.studies import answers
from rag.studies.catalogue import documents_of, index_studies
from rag.studies.questions import might_ask, parse


def study_answer(question: str, history: Sequence[dict], index: Index,
                 documents: Iterable[str] | None = None, direct: bool = True) -> Answer | None:
    """The records' answer to a study question (within ``documents`` when given), or None.

    ``direct`` lets a value asked of one named study ("Macêdo的研究有几例患者？") be answered from
    its record; a configured chat model answers those itself, from the passages.
    """
    if not might_ask(question, history, direct):
        return None
    studies = index_studies(index)
    if documents is not None:
        scope = set(documents)
        studies = [s for s in studies if s.doc_id in scope]
    if not studies:
        return None
    asked = parse(question, history, studies, direct)
    return None if asked is None else answers.answer(question, asked, documents_of(index))
