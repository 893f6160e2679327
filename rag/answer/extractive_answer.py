"""The extractive answerer: the chosen passages quoted exactly, each cited, the short answer first.

No model writes anything; ``rag.answer.extractive`` chose the sentences, this turns them into text.
"""

from __future__ import annotations

import re

from rag.answer import short_answer
from rag.answer.answering import Evidence, cite
from rag.answer.extractive import asks_for_own_references
from rag.indexing.index import Index
from rag.answer.language import is_english
from rag.schema import Answer, Citation, ShortAnswer

ENGLISH_LEAD = "The documents (in Chinese) say: "
# Between the short answer and the quoted passages that support it.
SHORT_ANSWER_SEPARATOR = "——"
_SPACES = re.compile(r"\s*\n\s*")
_BRACKETED_NUMBER = re.compile(r"\[(\d{1,3})\]")


def as_quoted(text: str) -> str:
    """A passage as quoted in the answer text: one line, and its own "[1]" (a reference number in
    the source) in full-width brackets so it is not read as a citation marker."""
    return _BRACKETED_NUMBER.sub(r"［\1］", _SPACES.sub(" ", text))


class ExtractiveAnswerer:
    """Answers with the selected sentences themselves."""

    def answer(self, question: str, evidence: Evidence) -> Answer:
        """The quoted passages with their markers, led by the words that answer when there are such."""
        index = evidence.index
        citations = [sentences_citation(index, n, p.first, p.last, p.score)
                     for n, p in enumerate(evidence.selection.passages, start=1)]
        first = evidence.selection.passages[0]
        # A reference-list entry answers a question for the documents' references as a whole: the
        # chooser, fitted on sentences of running text, would pick a name out of it ("Fakhrutdinova").
        short = None if asks_for_own_references(question) else find_short_answer(
            index, evidence.models.chooser, question, list(range(first.first, first.last + 1)))
        body = "".join(f"{as_quoted(c.text)}[{c.n}]" for c in citations)
        if short is not None and short_answer.leads(question, short.text, citations[0].text):
            body = f"{as_quoted(short.text)}{SHORT_ANSWER_SEPARATOR}{body}"  # what was asked, first
        return Answer(question=question, answer=(ENGLISH_LEAD + body) if is_english(question) else body,
                      answerable=True, citations=citations, short_answer=short)


def sentences_citation(index: Index, n: int, first: int, last: int, score: float) -> Citation:
    """The citation [n] of sentences ``first..last``."""
    a, b = index.sentences[first], index.sentences[last]
    return cite(index, n, a.doc_id, a.section, a.start, b.end, score)


def find_short_answer(index: Index, chooser: short_answer.Chooser, question: str,
                      sentence_ids: list[int]) -> ShortAnswer | None:
    """The words of these sentences (the first citation's) that answer the question, as an exact span, or None."""
    found = short_answer.choose(question, [index.sentence_text(i) for i in sentence_ids], chooser)
    if found is None:
        return None
    n, a, b = found
    sentence = index.sentences[sentence_ids[n]]
    start, end = sentence.start + a, sentence.start + b
    return ShortAnswer(text=index.text(sentence.doc_id, start, end), doc_id=sentence.doc_id, start=start, end=end)
