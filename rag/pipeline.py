"""The assembled assistant: index, embedder, retrieval and answering behind two calls."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag import segment
from rag import short_answer
from rag.answer_models import AnswerModels, load_answer_models
from rag.config import RetrievalParams, SelectionParams, Settings
from rag.corpus import corpus_hashes
from rag.embedder import Embedder, load_embedder
from rag.validation import check_history, check_question
from rag.extractive import Selection, select
from rag.generative import ChatAnswerer
from rag.index import Index
from rag.language import is_english
from rag.lifecycle import ensure_index
from rag.retriever import Retrieval, retrieve
from rag.rewrite import follow_up_context
from rag.schema import Answer, Citation, Passage, ShortAnswer

NO_ANSWER_ZH = "文档中没有找到能回答这个问题的内容。"
NO_ANSWER_EN = "The documents do not answer this question."
ENGLISH_LEAD = "The documents (in Chinese) say: "
# Between the short answer and the quoted passages that support it.
SHORT_ANSWER_SEPARATOR = "——"
_SPACES = re.compile(r"\s*\n\s*")
_BRACKETED_NUMBER = re.compile(r"\[(\d{1,3})\]")


def _as_quoted(text: str) -> str:
    """A passage as quoted in the answer text: one line, and its own "[1]" (a reference number in
    the source) in full-width brackets so it is not read as a citation marker."""
    return _BRACKETED_NUMBER.sub(r"［\1］", _SPACES.sub(" ", text))


# How many of the subject's best chunks a follow-up is answered from.
SUBJECT_CHUNKS = 2


def _merged(first: Retrieval, then: Retrieval, k: int) -> Retrieval:
    """``first``'s hits, then ``then``'s that are new, cut to ``k``."""
    seen = {h.chunk for h in first.hits}
    hits = first.hits + [h for h in then.hits if h.chunk not in seen]
    return Retrieval(then.query, then.query_vector, hits[:k], then.clarity)


@dataclass
class Pipeline:
    """Everything needed to answer: settings, the loaded index, the embedder and the fitted answer models."""

    settings: Settings
    index: Index
    embedder: Embedder
    models: AnswerModels
    generator: ChatAnswerer | None = None  # set when an OpenAI-compatible endpoint is configured

    @classmethod
    def open(cls, settings: Settings, progress: bool = True) -> "Pipeline":
        """Load the model and the index (building or rebuilding it when needed)."""
        corpus_hashes(settings.corpus_dir)  # a missing or bad corpus fails before the slow model load
        embedder = load_embedder(settings)
        embedder.encode(["预热 warm-up"], is_query=True)  # the first real question should not pay for this
        segment.warm_up()  # nor for jieba's dictionary, which a loaded index does not need until then
        generator = ChatAnswerer(settings) if settings.generative else None
        return cls(settings, ensure_index(settings, embedder, progress), embedder, load_answer_models(), generator)

    @property
    def retrieval_params(self) -> RetrievalParams:
        """How this pipeline retrieves (read from its settings, which an ablation may vary)."""
        return RetrievalParams.from_settings(self.settings)

    def retrieve(self, query: str, top_k: int | None = None) -> Retrieval:
        """Fused BM25 + dense hits for a query (``top_k`` overrides the settings' number)."""
        params = self.retrieval_params
        return retrieve(self.index, self.embedder, query, replace(params, top_k=top_k or params.top_k))

    def search(self, claim: str, top_k: int | None = None) -> list[Passage]:
        """Ranked passages for a claim, each with section, span and exact text (for writers)."""
        claim = check_question(claim, self.settings)
        result = self.retrieve(claim, top_k)
        passages = []
        for rank, hit in enumerate(result.hits, start=1):
            chunk = self.index.chunks[hit.chunk]
            passages.append(
                Passage(rank=rank, id=chunk.id, doc_id=chunk.doc_id, section=chunk.section,
                        text=self.index.chunk_text(hit.chunk), start=chunk.start, end=chunk.end, score=hit.score)
            )
        return passages

    def ask(self, question: str, history: Sequence[dict] | None = None, top_k: int | None = None) -> Answer:
        """A short answer with citations, or an abstention; ``history`` carries earlier turns."""
        return self.ask_traced(question, history, top_k)[0]

    def ask_traced(
        self, question: str, history: Sequence[dict] | None = None, top_k: int | None = None
    ) -> tuple[Answer, Retrieval, Selection]:
        """``ask``, also returning the retrieval and selection behind the answer (for evaluation)."""
        question = check_question(question, self.settings)
        history = check_history(history or [])
        t0 = time.perf_counter()
        query, retrieval, answer_from = self.prepare(question, history, top_k)
        t1 = time.perf_counter()
        selection = select(self.index, answer_from, query, self.models.ranker, SelectionParams.from_settings(self.settings))
        if self.generator is not None:
            answer = self.generate(question, retrieval, selection)
        else:
            answer = self.compose(question, selection)
        t2 = time.perf_counter()
        if query != question:
            answer.retrieval_query = query
        answer.timings_ms = {"retrieve": round((t1 - t0) * 1000, 2), "answer": round((t2 - t1) * 1000, 2)}
        return answer, retrieval, selection

    def prepare(self, question: str, history: list[dict], top_k: int | None = None) -> tuple[str, Retrieval, Retrieval]:
        """The retrieval query, what it retrieves, and the retrieval the answer is chosen from.

        A follow-up is answered from the passages about the earlier subject: "随访了多久？"
        must not drift to another trial that happens to use the word 随访.
        """
        context = follow_up_context(question, history)
        query = f"{context} {question}" if context else question
        retrieval = self.retrieve(query, top_k)
        if not context:
            return query, retrieval, retrieval
        subject = self.retrieve(context, SUBJECT_CHUNKS)
        answer_from = Retrieval(query, retrieval.query_vector, subject.hits, retrieval.clarity)
        return query, _merged(subject, retrieval, top_k or self.settings.top_k), answer_from

    def compose(self, question: str, selection: Selection) -> Answer:
        """Turn chosen passages into the answer text and its citations (or an abstention)."""
        english = is_english(question)
        if not selection.passages or not self.models.rule.answerable(selection.features):
            return Answer(question=question, answer=NO_ANSWER_EN if english else NO_ANSWER_ZH, answerable=False)
        citations = [self.citation(n, p.first, p.last, p.score) for n, p in enumerate(selection.passages, start=1)]
        first = selection.passages[0]
        short = self.short_answer(question, list(range(first.first, first.last + 1)))
        body = "".join(f"{_as_quoted(c.text)}[{c.n}]" for c in citations)
        if short is not None and short.text != citations[0].text:
            body = f"{_as_quoted(short.text)}{SHORT_ANSWER_SEPARATOR}{body}"  # what was asked, first
        return Answer(question=question, answer=(ENGLISH_LEAD + body) if english else body, answerable=True,
                      citations=citations, short_answer=short)

    def short_answer(self, question: str, sentence_ids: list[int]) -> ShortAnswer | None:
        """The words of these sentences (the first citation's) that answer the question, as an exact span, or None."""
        found = short_answer.choose(question, [self.index.sentence_text(i) for i in sentence_ids], self.models.chooser)
        if found is None:
            return None
        n, a, b = found
        sentence = self.index.sentences[sentence_ids[n]]
        start, end = sentence.start + a, sentence.start + b
        return ShortAnswer(text=self.index.text(sentence.doc_id, start, end), doc_id=sentence.doc_id, start=start, end=end)

    def generate(self, question: str, retrieval: Retrieval, selection: Selection) -> Answer:
        """Ask the configured chat model to answer from the numbered retrieved passages."""
        english = is_english(question)
        abstain = Answer(question=question, answer=NO_ANSWER_EN if english else NO_ANSWER_ZH, answerable=False)
        if not selection.passages or not self.models.rule.answerable(selection.features):
            return abstain  # no model call when retrieval found nothing that answers
        hits = retrieval.hits
        generated = self.generator.answer(
            question, [(self.index.chunks[h.chunk].section, self.index.chunk_text(h.chunk)) for h in hits]
        )
        if generated.abstained:
            return abstain.model_copy(update={"removed_markers": generated.removed or None})
        citations = []
        for n in sorted(generated.cited):
            hit, chunk = hits[n - 1], self.index.chunks[hits[n - 1].chunk]
            citations.append(Citation(
                n=n, id=chunk.id, doc_id=chunk.doc_id, section=chunk.section, text=self.index.chunk_text(hit.chunk),
                start=chunk.start, end=chunk.end, score=round(hit.score, 6),
            ))
        return Answer(question=question, answer=generated.text, answerable=True, citations=citations,
                      removed_markers=generated.removed)

    def citation(self, n: int, first: int, last: int, score: float) -> Citation:
        """The citation of sentences ``first..last``: exact text and span of the original document."""
        a, b = self.index.sentences[first], self.index.sentences[last]
        return Citation(
            n=n, id=f"{a.doc_id}#{a.start}-{b.end}", doc_id=a.doc_id, section=a.section,
            text=self.index.text(a.doc_id, a.start, b.end), start=a.start, end=b.end, score=round(score, 6),
        )
