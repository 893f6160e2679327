"""LangChain at the edge: the project's retrieval and cited answers as LangChain components,
and LangChain chat models as the generative answerer's model.

Only this module imports LangChain, so the service starts without it (the pipeline imports
it only when a chat endpoint is configured). A LangChain user composes these like any other
component::

    from rag.langchain_edge import answer_chain, retriever
    from rag.pipeline import Pipeline

    pipeline = Pipeline.open(Settings())
    docs = retriever(pipeline).invoke("Kim等人脑室注射hUCB-MSCs")      # list[Document], spans in metadata
    chain = answer_chain(pipeline) | (lambda a: a["short_answer"] or a["answer"])
    chain.invoke({"question": "那剂量是多少？", "history": [...]})       # any Runnable can follow
"""

from __future__ import annotations

from dataclasses import replace

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict

from rag.config import RetrievalParams, Settings
from rag.answer.generative import ChatModelAnswerer
from rag.indexing.index import Index
from rag.answer.retriever import ChunkHit, retrieve


def to_document(index: Index, hit: ChunkHit) -> Document:
    """A LangChain Document for a hit; metadata carry id, document, section, span and scores."""
    chunk = index.chunks[hit.chunk]
    return Document(
        page_content=index.chunk_text(hit.chunk),
        id=chunk.id,
        metadata={
            "id": chunk.id, "doc_id": chunk.doc_id, "section": chunk.section, "start": chunk.start, "end": chunk.end,
            "score": hit.score, "dense_score": hit.dense, "bm25_score": hit.bm25,
            "dense_rank": hit.dense_rank, "bm25_rank": hit.bm25_rank,
        },
    )


class HybridRetriever(BaseRetriever):
    """LangChain retriever over a built index: BM25 + dense, fused by reciprocal rank.

    Build it with ``retriever(pipeline)`` to rank exactly as the service does; ``params`` has
    no defaults, so no second set can drift from ``Settings``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    embedder: object
    params: RetrievalParams

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        """The fused top-k chunks as Documents."""
        result = retrieve(self.index, self.embedder, query, self.params)
        return [to_document(self.index, h) for h in result.hits]


def retriever(pipeline, **overrides) -> HybridRetriever:
    """The pipeline's retrieval as a LangChain retriever, with its parameters (``overrides`` change some,
    e.g. ``top_k=4``)."""
    params = replace(pipeline.retrieval_params, **overrides)
    return HybridRetriever(index=pipeline.index, embedder=pipeline.embedder, params=params)


def answer_chain(pipeline) -> Runnable:
    """A Runnable: a question (a string, or ``{"question", "history"}``) in, the cited answer (a dict) out.

    The dict is the API's answer JSON: ``answer``, ``short_answer``, ``citations`` with exact spans.
    """
    def answer(value) -> dict:
        if isinstance(value, str):
            value = {"question": value}
        return pipeline.ask(value["question"], value.get("history") or []).model_dump()

    return RunnableLambda(answer, name="cited_answer")


def chat_answerer(model: BaseChatModel) -> ChatModelAnswerer:
    """The generative answerer over any LangChain chat model (an endpoint's, or a fake one in tests)."""
    def reply(messages: list[tuple[str, str]]) -> str:
        content = model.invoke(messages).content
        return content if isinstance(content, str) else str(content)

    return ChatModelAnswerer(reply)


def openai_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model behind the configured OpenAI-compatible endpoint."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model_name=settings.llm_model,
        openai_api_base=settings.llm_base_url,
        openai_api_key=settings.llm_api_key or "not-needed",
        request_timeout=settings.llm_timeout_s,
        max_retries=1,
        temperature=0,
    )
