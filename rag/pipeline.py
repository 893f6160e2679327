"""The assembled assistant: index, embedder, retrieval and an answerer behind two calls."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from rag.ingest import segment
from rag.answer.answer_models import AnswerModels, load_answer_models
from rag.answer.answering import Answerer, Evidence, no_answer, no_documents, quote
from rag.config import RetrievalParams, SelectionParams, Settings
from rag.ingest.corpus import corpus_hashes, folder_hashes
from rag.indexing.embedder import Embedder, load_embedder
from rag.answer.extractive import Selection, select
from rag.answer.extractive_answer import ExtractiveAnswerer
from rag.indexing.corpus_text import corpus_text
from rag.indexing.index import Index
from rag.indexing.lifecycle import ensure_index
from rag.indexing.query_batcher import QueryBatcher
from rag.answer.retriever import Retrieval, retrieve
from rag.answer.rewrite import follow_up_context
from rag.progress import stage
from rag.schema import Answer, Passage
from rag.studies.catalogue import index_studies
from rag.studies.router import study_answer
from rag.answer.validation import check_history, check_question


def answerer_for(settings: Settings) -> Answerer:
    """The extractive answerer, or the chat model's when an OpenAI-compatible endpoint is configured."""
    if not settings.generative:
        return ExtractiveAnswerer()
    from rag.langchain_edge import chat_answerer, openai_chat_model  # LangChain only in generative mode

    return chat_answerer(openai_chat_model(settings))


# How many of the subject's best chunks a follow-up is answered from.
SUBJECT_CHUNKS = 2


def _merged(first: Retrieval, then: Retrieval, k: int) -> Retrieval:
    """``first``'s hits, then ``then``'s that are new, cut to ``k``."""
    seen = {h.chunk for h in first.hits}
    hits = first.hits + [h for h in then.hits if h.chunk not in seen]
    return Retrieval(then.query, then.query_vector, hits[:k], then.clarity, then.documents)


def check_corpus_folder(settings: Settings) -> None:
    """Raise CorpusError for a missing, empty or bad corpus folder. A server on a shared store
    needs no folder of its own (the documents are in the database), so there only a folder
    that holds files is checked."""
    folder_hashes(settings.corpus_dir) if settings.store else corpus_hashes(settings.corpus_dir)


@dataclass
class Pipeline:
    """Everything needed to answer: settings, the loaded index, the embedder, the fitted answer models
    and the answerer that writes the answer (extractive unless a chat model is configured)."""

    settings: Settings
    index: Index
    embedder: Embedder
    models: AnswerModels
    answerer: Answerer = field(default_factory=ExtractiveAnswerer)

    @classmethod
    def open(cls, settings: Settings, progress: bool = True) -> "Pipeline":
        """Load the model and the index (building or rebuilding it when needed)."""
        check_corpus_folder(settings)  # a missing or bad corpus fails before the slow model load
        with stage("loading the embedding model"):
            # Concurrent questions share model runs; indexing passes straight through to the model.
            embedder = QueryBatcher(load_embedder(settings, serving=True))
            embedder.encode(["预热 warm-up"], is_query=True)  # the first real question should not pay for this
            segment.warm_up()  # nor for jieba's dictionary, which a loaded index does not need until then
        index = ensure_index(settings, embedder, progress)
        with stage("reading the study records"):
            # Made from every document on first use: at 1M chunks that took minutes, which the
            # first study question, and every one arriving behind it, would otherwise wait for.
            index_studies(index)
        with stage("reading the corpus text"):
            corpus_text(index)  # every question looks its words up in it
        return cls(settings, index, embedder, load_answer_models(), answerer_for(settings))

    @property
    def retrieval_params(self) -> RetrievalParams:
        """How this pipeline retrieves (read from its settings, which an ablation may vary)."""
        return RetrievalParams.from_settings(self.settings)

    def retrieve(self, query: str, top_k: int | None = None, documents: Iterable[str] | None = None) -> Retrieval:
        """Fused BM25 + dense hits for a query (``top_k`` overrides the settings' number; ``documents``
        limits it to those documents)."""
        params = self.retrieval_params
        scope = None if documents is None else frozenset(documents)
        return retrieve(self.index, self.embedder, query, replace(params, top_k=top_k or params.top_k, documents=scope))

    def search(self, claim: str, top_k: int | None = None, documents: Iterable[str] | None = None) -> list[Passage]:
        """Ranked passages for a claim, each with section, span and exact text (for writers);
        ``documents`` limits them to those documents (none when none of them exists)."""
        claim = check_question(claim, self.settings)
        result = self.retrieve(claim, top_k, documents)
        passages = []
        # As a share of the best, like a citation's score: fused rank scores mean nothing alone.
        best = max((hit.score for hit in result.hits), default=1.0) or 1.0
        for rank, hit in enumerate(result.hits, start=1):
            c = self.index.chunks[hit.chunk]
            passages.append(quote(Passage, self.index, c.doc_id, c.section, c.start, c.end, rank=rank,
                                  score=round(hit.score / best, 4)))
        return passages

    def ask(self, question: str, history: Sequence[dict] | None = None, top_k: int | None = None,
            documents: Iterable[str] | None = None) -> Answer:
        """A short answer with citations, or an abstention; ``history`` carries earlier turns and
        ``documents`` limits the answer to those documents."""
        return self.ask_traced(question, history, top_k, documents)[0]

    def ask_traced(
        self, question: str, history: Sequence[dict] | None = None, top_k: int | None = None,
        documents: Iterable[str] | None = None,
    ) -> tuple[Answer, Retrieval, Selection]:
        """``ask``, also returning the retrieval and selection behind the answer (for evaluation)."""
        question = check_question(question, self.settings)
        history = check_history(history or [])
        t0 = time.perf_counter()
        if documents is not None and not set(documents) & self.index.documents.keys():
            return no_documents(question), Retrieval(question, np.zeros(0), []), Selection([], {})
        query, retrieval, answer_from = self.prepare(question, history, top_k, documents)
        t1 = time.perf_counter()
        selection = select(self.index, answer_from, query, self.models.ranker, SelectionParams.from_settings(self.settings))
        # Contrasts, comparisons, lists and follow-ups of studies from their records (and, without a
        # chat model, a value asked of one named study).
        routed = study_answer(question, history, self.index, documents,
                              direct=isinstance(self.answerer, ExtractiveAnswerer))
        if routed is not None:
            answer = routed
        # Declined before any answerer runs: a chat model is never asked what retrieval cannot answer.
        elif selection.passages and self.models.rule.answerable(selection.features):
            answer = self.answerer.answer(question, Evidence(self.index, self.models, retrieval, selection))
        else:
            answer = no_answer(question)
        t2 = time.perf_counter()
        if query != question:
            answer.retrieval_query = query
        answer.timings_ms = {"retrieve": round((t1 - t0) * 1000, 2), "answer": round((t2 - t1) * 1000, 2)}
        return answer, retrieval, selection

    def prepare(self, question: str, history: list[dict], top_k: int | None = None,
                documents: Iterable[str] | None = None) -> tuple[str, Retrieval, Retrieval]:
        """The retrieval query, what it retrieves, and the retrieval the answer is chosen from.

        A follow-up is answered from the passages about the earlier subject: "随访了多久？"
        must not drift to another trial that happens to use the word 随访.
        """
        context = follow_up_context(question, history)
        query = f"{context} {question}" if context else question
        retrieval = self.retrieve(query, top_k, documents)
        if not context:
            return query, retrieval, retrieval
        subject = self.retrieve(context, SUBJECT_CHUNKS, documents)
        answer_from = Retrieval(query, retrieval.query_vector, subject.hits, retrieval.clarity, retrieval.documents)
        return query, _merged(subject, retrieval, top_k or self.settings.top_k), answer_from
