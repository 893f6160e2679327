"""Ablations scored by the same harness: retrieval methods, neighbour expansion, and the plain
LangChain pipeline a user would write by default."""

from __future__ import annotations

import time
import warnings
from types import SimpleNamespace

from rag.quality.evaluation import GoldItem, run, score_item, summarize
from rag.pipeline import Pipeline

VARIANTS = {
    "fused (default)": {},
    "BM25 only": {"dense_weight": 0.0},
    "dense only": {"bm25_weight": 0.0},
    "no neighbour expansion": {"neighbour_expansion": False},
}


def run_ablations(pipeline: Pipeline, items: list[GoldItem]) -> dict[str, dict]:
    """Overall metrics of each variant of the pipeline, and of the plain LangChain pipeline."""
    table = {}
    for name, change in VARIANTS.items():
        variant = Pipeline(pipeline.settings.model_copy(update=change), pipeline.index, pipeline.embedder, pipeline.models)
        table[name] = summarize(run(variant, items))["overall"]
    table["plain LangChain (RecursiveCharacterTextSplitter + FAISS)"] = summarize(run_plain_langchain(pipeline, items))["overall"]
    return table


def run_plain_langchain(pipeline: Pipeline, items: list[GoldItem]) -> list[dict]:
    """The default LangChain recipe on the same corpus and model; its answer is the top chunk.

    RecursiveCharacterTextSplitter with default settings, HuggingFaceEmbeddings over the same
    converted e5 folder (no query/passage prefixes, as a default user writes it), FAISS
    similarity search, the question alone (no conversation). It never abstains.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its sunset
        from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rag.indexing.embedder import resolve_model

    splitter = RecursiveCharacterTextSplitter(add_start_index=True)  # start index only to score spans
    docs = splitter.create_documents(
        [d.text for d in pipeline.index.documents.values()],
        metadatas=[{"doc_id": d.doc_id} for d in pipeline.index.documents.values()],
    )
    path, _ = resolve_model(pipeline.settings)
    store = FAISS.from_documents(docs, HuggingFaceEmbeddings(model_name=path, model_kwargs={"device": "cpu"}))
    results = []
    for item in items:
        t0 = time.perf_counter()
        hits = store.similarity_search(item.question, k=pipeline.settings.top_k)
        elapsed = (time.perf_counter() - t0) * 1000
        spans = [(h.metadata["doc_id"], h.metadata["start_index"], h.metadata["start_index"] + len(h.page_content)) for h in hits]
        top = spans[0]
        citation = SimpleNamespace(doc_id=top[0], start=top[1], end=top[2])
        answer = SimpleNamespace(answer=hits[0].page_content, answerable=True, citations=[citation],
                                 timings_ms={"retrieve": elapsed, "answer": 0.0})
        results.append(score_item(item, pipeline.index, answer, spans))
    return results
