"""Measurements that run in a process of their own (``python -m bench worker NAME ARGS``).

A fresh process per measurement keeps memory numbers clean (each reports its own peak
RSS) and keeps one run's caches and allocator state out of the next.
"""

from __future__ import annotations

import gc
import math
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench import synth
from bench.common import CORPUS, RandomEmbedder, interleaved, questions, rss_mb, stats_ms, timed

K_DEPTH = 50  # the retriever reads this deep into the dense and BM25 lists (rag.answer.retriever.CANDIDATE_DEPTH)
TOP_K = 6  # passages per question (RAG_TOP_K)
SEP = "\u2063"  # joins pre-cut terms into one string for LangChain's BM25 (never in real text)


# ------------------------------------------------------------------ helpers


def _quiet() -> None:
    import logging
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.simplefilter("ignore")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _model_path() -> str:
    from rag.config import Settings
    from rag.indexing.embedder import resolve_model

    return resolve_model(Settings())[0]


def _faiss_bytes(index) -> int:
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def _bm25_bytes(model) -> int:
    return int(sum(v.nbytes for v in model.scores.values() if hasattr(v, "nbytes")))


def _search_all(index, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    """One query at a time, as a server answers them: durations and found ids."""
    from rag.indexing import vectors

    found, times = [], []
    for q in queries[:2]:
        vectors.search(index, q, k)  # warm-up
    for q in queries:
        t = time.perf_counter()
        _, ids = vectors.search(index, q, k)
        times.append(time.perf_counter() - t)
        found.append(ids)
    return times, np.array(found)


def _langchain_imports():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_classic.retrievers import EnsembleRetriever
        from langchain_community.retrievers import BM25Retriever
        from langchain_community.vectorstores import FAISS
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter
    return SimpleNamespace(Ensemble=EnsembleRetriever, BM25=BM25Retriever, FAISS=FAISS,
                           HF=HuggingFaceEmbeddings, Splitter=RecursiveCharacterTextSplitter)


# ------------------------------------------------------------------ the review, real model


def review(args: dict) -> dict:
    """Build the review's index with the real model, time the pipeline, then the LangChain recipe."""
    _quiet()
    from rag.indexing import index as index_mod
    from rag.indexing import lifecycle
    from rag.ingest import segment
    from rag.answer.answer_models import load_answer_models
    from rag.config import Settings
    from rag.ingest.corpus import list_corpus_files, read_text
    from rag.indexing.embedder import load_embedder
    from rag.pipeline import Pipeline

    reps, n_q, passes = args["build_reps"], args["queries"], args["passes"]
    index_dir, corpus = Path(args["index_dir"]), Path(args.get("corpus_dir") or CORPUS)
    settings = Settings(corpus_dir=corpus, index_dir=index_dir)
    out: dict = {}

    t = time.perf_counter()
    segment.warm_up()  # jieba's dictionary: loaded once per process, not per build
    import jieba

    jieba.initialize()  # the global jieba LangChain's BM25 uses below
    out["jieba_init_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    embedder = load_embedder(settings)
    embedder.encode(["预热 warm-up"], is_query=True)
    out["model_load_s"] = round(time.perf_counter() - t, 3)
    out["embedding_backend"] = settings.embedding_backend
    # The comparison for throughput: the model run the standard way, sentence-transformers'
    # own encode at its default batch size, whatever backend the build uses.
    from sentence_transformers import SentenceTransformer

    from rag.indexing.embedder import DEFAULT_BATCH_SIZE, SentenceTransformerEmbedder, resolve_model

    model_path, model_id = resolve_model(settings)
    model = SentenceTransformer(model_path, device="cpu")
    st_batch = DEFAULT_BATCH_SIZE["sentence-transformers"]
    torch_embedder = SentenceTransformerEmbedder(model_path, model_id, settings.query_prefix,
                                                 settings.passage_prefix, st_batch)

    builds, encodes = [], []
    built = None
    for rep in range(reps):
        if rep % 2:  # alternate which goes first, so neither always meets a warmer cache
            encodes.append(_model_encode(model, settings, built, st_batch))
        t = time.perf_counter()
        for path in list_corpus_files(corpus):
            read_text(path)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        built = index_mod.build(settings, embedder, progress=False)
        total = time.perf_counter() - t
        tm = dict(built.manifest["build_timings_s"])
        builds.append({"total_s": total, "read_s": read_s, "timings": tm, "texts": len(set(index_mod.embedded_texts(built)[0]))})
        if not rep % 2:
            encodes.append(_model_encode(model, settings, built, st_batch))
    lifecycle.publish(built, index_dir)
    counts = built.manifest["counts"]
    med = lambda xs: float(np.median(xs))  # noqa: E731
    split = {
        "read": med([b["read_s"] for b in builds]),
        "sentence split": med([max(0.0, b["timings"]["read_split_s"] - b["read_s"]) for b in builds]),
        "chunk": med([b["timings"]["chunk_s"] for b in builds]),
        "BM25 tokenise+index": med([b["timings"]["bm25_s"] for b in builds]),
        "embed": med([b["timings"]["embed_s"] for b in builds]),
        "FAISS index": med([b["timings"]["faiss_s"] for b in builds]),
    }
    total = med([b["total_s"] for b in builds])
    texts = builds[0]["texts"]
    out["build"] = {
        "reps": reps, "counts": counts, "embedded_texts": texts, "total_s": round(total, 3),
        "chunks_per_s": round(counts["chunks"] / total, 2),
        "split_s": {k: round(v, 4) for k, v in split.items()},
        # Throughput compares the fastest of the runs on each side: the least disturbed by other work.
        "embed_texts_per_s": round(texts / min(b["timings"]["embed_s"] for b in builds), 2),
        "model_encode_texts_per_s": round(texts / min(encodes), 2),
        "embed_vs_model": round(min(encodes) / min(b["timings"]["embed_s"] for b in builds), 3),  # 1.0 = as fast
        "model_encode_batch_size": st_batch,
        "all_totals_s": [round(b["total_s"], 3) for b in builds],
        "all_embed_s": [b["timings"]["embed_s"] for b in builds],
        "all_model_encode_s": [round(x, 3) for x in encodes],
    }

    # The plain LangChain pipeline on the same corpus, model folder and machine: built first, so
    # that its queries can be timed interleaved with ours (other load on the machine then hits both alike).
    pipeline = Pipeline.open(settings, progress=False)  # the built, saved and reloaded index
    lc = _langchain_imports()
    t = time.perf_counter()
    hf = lc.HF(model_name=_model_path(), model_kwargs={"device": "cpu"})
    hf.embed_query("预热 warm-up")
    out["langchain_model_load_s"] = round(time.perf_counter() - t, 3)
    docs_text = [(d.doc_id, d.text) for d in pipeline.index.documents.values()]
    variants = {"defaults (chunk_size 4000)": {}, "chunk_size 300": {"chunk_size": 300, "chunk_overlap": 30}}
    side, retrievers = {}, {}
    for name, kw in variants.items():
        rows = []
        for _ in range(reps):
            t0 = time.perf_counter()
            splitter = lc.Splitter(add_start_index=True, **kw)
            docs = splitter.create_documents([x for _, x in docs_text], metadatas=[{"doc_id": d} for d, _ in docs_text])
            t1 = time.perf_counter()
            store = lc.FAISS.from_documents(docs, hf)
            t2 = time.perf_counter()
            bm25 = lc.BM25.from_documents(docs, preprocess_func=jieba.lcut, k=TOP_K)
            t3 = time.perf_counter()
            ensemble = lc.Ensemble(retrievers=[bm25, store.as_retriever(search_kwargs={"k": TOP_K})], weights=[0.5, 0.5])
            rows.append({"split_s": t1 - t0, "embed_faiss_s": t2 - t1, "bm25_s": t3 - t2, "total_s": time.perf_counter() - t0})
        side[name] = {"chunks": len(docs), "build_s": round(med([r["total_s"] for r in rows]), 3),
                      "split_s": {k: round(med([r[k] for r in rows]), 4) for k in ("split_s", "embed_faiss_s", "bm25_s")}}
        retrievers[name] = (ensemble, store)

    qs = questions(n_q) * passes
    fns = {"query_embedding": lambda q: embedder.encode([q], is_query=True), "retrieve": pipeline.retrieve,
           "search": pipeline.search, "ask": pipeline.ask}
    for name, (ensemble, store) in retrievers.items():
        fns[f"lc:{name}:ensemble"] = ensemble.invoke
        fns[f"lc:{name}:faiss_only"] = lambda q, store=store: store.similarity_search(q, k=TOP_K)
    times = interleaved(fns, qs)
    out["latency"] = {"questions": len(set(qs)), "calls": len(qs),
                      **{k: stats_ms(v) for k, v in times.items() if not k.startswith("lc:")}}
    for name in retrievers:
        side[name]["ensemble"] = stats_ms(times[f"lc:{name}:ensemble"])
        side[name]["faiss_only"] = stats_ms(times[f"lc:{name}:faiss_only"])
    out["langchain"] = side
    parts = [pipeline.ask(q).timings_ms for q in qs]
    out["latency"]["ask_parts_ms"] = {k: round(float(np.median([p[k] for p in parts])), 3) for k in ("retrieve", "answer")}

    # The question embedded by the other backend (torch through sentence-transformers), interleaved.
    other = interleaved({"query_embedding": fns["query_embedding"],
                         "torch": lambda q: torch_embedder.encode([q], is_query=True)}, qs)
    out["latency"]["query_embedding_torch"] = stats_ms(other["torch"])
    return out


def _model_encode(model, settings, built, batch_size: int) -> float:
    """Seconds for the SentenceTransformer alone to embed what the build embedded (same prompt)."""
    from rag.indexing import index as index_mod

    texts = sorted(set(index_mod.embedded_texts(built)[0]))
    t = time.perf_counter()
    model.encode(texts, prompt=settings.passage_prefix, batch_size=batch_size,
                 normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - t


# ------------------------------------------------------------------ cold start, stage by stage


def coldstart(args: dict) -> dict:
    """What a fresh ``rag ask`` spends its time on, stage by stage, in this fresh process."""
    t0 = time.perf_counter()
    from rag.indexing import store
    from rag.config import Settings
    from rag.indexing.embedder import load_embedder
    from rag.indexing.lifecycle import ensure_index
    from rag.pipeline import Pipeline  # noqa: F401

    t1 = time.perf_counter()
    settings = Settings(corpus_dir=Path(args.get("corpus_dir") or CORPUS), index_dir=Path(args["index_dir"]))
    embedder = load_embedder(settings)
    t2 = time.perf_counter()
    embedder.encode(["预热 warm-up"], is_query=True)
    t3 = time.perf_counter()
    idx = ensure_index(settings, embedder, progress=False)
    t4 = time.perf_counter()
    from rag.answer.answer_models import load_answer_models

    pipeline = Pipeline(settings, idx, embedder, load_answer_models())
    answer = pipeline.ask(args["question"])
    t5 = time.perf_counter()
    assert answer.answer and store.live_manifest(settings.index_dir) is not None
    return {"stages_s": {"import": round(t1 - t0, 3), "load model": round(t2 - t1, 3), "warm-up encode": round(t3 - t2, 3),
                         "load + verify index": round(t4 - t3, 3), "first answer": round(t5 - t4, 3)},
            "total_s": round(t5 - t0, 3)}


# ------------------------------------------------------------------ scale: our index (BM25 + FAISS policy)


def scale_ours(args: dict) -> dict:
    """BM25 (bm25s) and the production FAISS index over ``n`` synthetic chunks; fused retrieval."""
    _quiet()
    from rag.indexing import lexical, vectors
    from rag.config import RetrievalParams, Settings
    from rag.indexing.embedder import load_embedder
    from rag.answer.retriever import retrieve, top_indices

    n, n_q, seed = args["n"], args["queries"], args.get("seed", 0)
    base = rss_mb()
    t = time.perf_counter()
    terms = synth.term_chunks(n, seed)
    gen_terms_s = time.perf_counter() - t
    t = time.perf_counter()
    bm25 = lexical.Bm25.from_terms(terms)  # the production build (rag.indexing.lexical.VectorisedBM25)
    model = bm25._model
    bm25_build = time.perf_counter() - t
    mean_terms = float(np.mean([len(x) for x in terms[:10000]]))
    del terms
    gc.collect()
    rss_bm25 = rss_mb()

    t = time.perf_counter()
    X, Q, truth = synth.dataset(n, n_q, seed, args.get("cache"))
    gen_vec_s = time.perf_counter() - t
    rss_before_index = rss_mb()
    t = time.perf_counter()
    index = vectors.build(X)
    faiss_build = time.perf_counter() - t
    rss_index = rss_mb()
    dense_times, found = _search_all(index, Q, K_DEPTH)
    recall = synth.recall_at(found, truth, 10)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chunks.faiss"
        t = time.perf_counter()
        vectors.save(index, path)
        save_s = time.perf_counter() - t
        t = time.perf_counter()
        loaded = vectors.load(path)
        load_s = time.perf_counter() - t
        same = all(np.array_equal(vectors.search(index, q, K_DEPTH)[1], vectors.search(loaded, q, K_DEPTH)[1]) for q in Q[:20])
        file_bytes = path.stat().st_size
        described_after_load = vectors.describe(loaded)
        del loaded

    qs = questions(args.get("text_queries"))
    bm25_times = timed(bm25.scores, qs)
    score_arrays = [bm25.scores(q) for q in qs[:20]]
    sort_times = timed(lambda s: np.argsort(-s, kind="stable")[:K_DEPTH], score_arrays)
    # The same top 50 by selection, as the retriever does it (the full sort is what it did before).
    select_times = timed(lambda s: top_indices(s, K_DEPTH), score_arrays)

    settings = Settings()
    embedder = load_embedder(settings)
    embedder.encode(["预热 warm-up"], is_query=True)
    stub = SimpleNamespace(chunks=range(n), chunk_vectors=index, chunk_bm25=bm25,
                           sentence_vectors=np.zeros((0, X.shape[1]), dtype=np.float32))
    params = RetrievalParams.from_settings(settings)
    fused = timed(lambda q: retrieve(stub, embedder, q, params), qs)
    embed_times = timed(lambda q: embedder.encode([q], is_query=True), qs)
    return {
        "n": n, "mean_terms_per_chunk": round(mean_terms, 1),
        "generate_s": {"terms": round(gen_terms_s, 2), "vectors+exact neighbours (or cache)": round(gen_vec_s, 2)},
        "bm25": {"build_s": round(bm25_build, 3), "bytes": _bm25_bytes(model), "vocab": len(model.vocab_dict),
                 "rss_delta_mb": round(rss_bm25 - base, 1), "scores": stats_ms(bm25_times),
                 "full_argsort": stats_ms(sort_times), "top50_argpartition": stats_ms(select_times)},
        "dense": {"index": vectors.describe(index), "build_s": round(faiss_build, 3), "bytes": _faiss_bytes(index),
                  "rss_delta_mb": round(rss_index - rss_before_index, 1), "search_k50": stats_ms(dense_times),
                  "recall_at_10": round(recall, 4), "save_s": round(save_s, 3), "load_s": round(load_s, 3),
                  "file_bytes": file_bytes, "after_load": described_after_load, "same_results_after_load": bool(same)},
        "fused": {"retrieve": stats_ms(fused), "query_embedding": stats_ms(embed_times), "questions": len(qs)},
        "vector_bytes": int(X.nbytes),
    }


# ------------------------------------------------------------------ scale: exact vs approximate FAISS


def ann(args: dict) -> dict:
    """One FAISS index kind at ``n`` random vectors: build time, bytes, latency and recall@10 per setting."""
    import faiss

    from rag.indexing import vectors

    n, kind, n_q, seed = args["n"], args["kind"], args["queries"], args.get("seed", 0)
    X, Q, truth = synth.dataset(n, n_q, seed, args.get("cache"))
    half = n_q // 2
    t = time.perf_counter()
    if kind == "flat":
        index = vectors.build(X, approximate=False)
    elif kind == "ivf":
        index = vectors.build(X, approximate=True)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(X.shape[1], args.get("M", 32), faiss.METRIC_INNER_PRODUCT)
        index.add(X)
    else:
        raise ValueError(kind)
    build_s = time.perf_counter() - t
    settings = {"flat": [None], "ivf": args.get("nprobe", [8, 16, 32, 64, 128]), "hnsw": args.get("ef", [16, 32, 64, 128])}[kind]
    rows = []
    for value in settings:
        if kind == "ivf":
            index.nprobe = min(value, index.nlist)
        elif kind == "hnsw":
            index.hnsw.efSearch = value
        if kind == "flat" and args.get("flat_queries"):
            # Exact search is exact: its recall is 1 by definition, and at 1M each query takes
            # a fifth of a second, so fewer queries time it well enough (half of each kind).
            m = args["flat_queries"] // 2
            keep = np.r_[0:m, half:half + m]
            times, found = _search_all(index, Q[keep], K_DEPTH)
            rows.append({"param": value, "search_k50": stats_ms(times), "recall_at_10": 1.0,
                         "recall_perturbed": 1.0, "recall_fresh": 1.0})
            continue
        times, found = _search_all(index, Q, K_DEPTH)
        rows.append({"param": value, "search_k50": stats_ms(times), "recall_at_10": round(synth.recall_at(found, truth), 4),
                     "recall_perturbed": round(synth.recall_at(found[:half], truth[:half]), 4),
                     "recall_fresh": round(synth.recall_at(found[half:], truth[half:]), 4)})
    out = {"n": n, "kind": kind, "build_s": round(build_s, 3), "bytes": _faiss_bytes(index), "rows": rows}
    if kind == "ivf":
        out["nlist"] = index.nlist
    if kind == "hnsw":
        out["M"] = args.get("M", 32)
        out["efConstruction"] = index.hnsw.efConstruction
    return out


def crossover(args: dict) -> dict:
    """Exact vs IVF (production settings) at small sizes: where does approximate search start to pay?"""
    from rag.indexing import vectors

    rows = []
    for n in args["sizes"]:
        space = synth.VectorSpace(0)
        X = space.draw(n)
        Q = space.queries(X, args["queries"])
        truth = synth.exact_top(X, Q, 10)
        row = {"n": n}
        for name, approx in (("flat", False), ("ivf", True)):
            t = time.perf_counter()
            index = vectors.build(X, approximate=approx)
            build_s = time.perf_counter() - t
            times, found = _search_all(index, Q, K_DEPTH)
            row[name] = {"index": vectors.describe(index), "build_s": round(build_s, 3), "search_k50": stats_ms(times),
                         "recall_at_10": round(synth.recall_at(found, truth), 4)}
        rows.append(row)
    return {"rows": rows, "exact_max": vectors.EXACT_MAX, "nprobe": vectors.NPROBE}


# ------------------------------------------------------------------ scale: the plain LangChain pipeline


def scale_langchain(args: dict) -> dict:
    """LangChain's BM25Retriever (rank_bm25) + FAISS vector store + EnsembleRetriever over the same chunks."""
    _quiet()
    import jieba

    lc = _langchain_imports()
    n, seed = args["n"], args.get("seed", 0)
    texts = [SEP.join(t) for t in synth.term_chunks(n, seed)]
    X = synth.dataset(n, args["queries"], seed, args.get("cache"))[0]
    jieba.initialize()

    def preprocess(text: str) -> list[str]:
        # Documents arrive pre-cut (the same terms our BM25 gets); questions are cut by jieba.
        return text.split(SEP) if SEP in text else jieba.lcut(text)

    hf = lc.HF(model_name=_model_path(), model_kwargs={"device": "cpu"})
    hf.embed_query("预热 warm-up")
    gc.collect()
    base = rss_mb()
    t = time.perf_counter()
    bm25 = lc.BM25.from_texts(texts, preprocess_func=preprocess, k=TOP_K)
    bm25_s = time.perf_counter() - t
    rss_bm25 = rss_mb()
    t = time.perf_counter()
    store = lc.FAISS.from_embeddings(zip(texts, X), hf)
    faiss_s = time.perf_counter() - t
    rss_all = rss_mb()
    ensemble = lc.Ensemble(retrievers=[bm25, store.as_retriever(search_kwargs={"k": TOP_K})], weights=[0.5, 0.5])
    qs = questions(args.get("text_queries"))
    qv = [np.asarray(hf.embed_query(q), dtype=np.float32) for q in qs]
    times = interleaved({"bm25": bm25.invoke, "ensemble": ensemble.invoke,
                         "dense_by_vector": lambda q: store.similarity_search_by_vector(qv[qs.index(q)], k=TOP_K)},
                        qs, args.get("warmup", 2))
    return {
        "n": n, "bm25_build_s": round(bm25_s, 3), "faiss_build_s": round(faiss_s, 3), "build_s": round(bm25_s + faiss_s, 3),
        "bm25_rss_delta_mb": round(rss_bm25 - base, 1), "rss_delta_mb": round(rss_all - base, 1),
        **{k: stats_ms(v) for k, v in times.items()},
        "questions": len(qs),
    }


# ------------------------------------------------------------------ adding and deleting a document


def updates(args: dict) -> dict:
    """Add, replace, then delete one document through the service at ``n`` chunks (random vectors,
    real everything else); BM25 query time over the resulting segments; loading the build."""
    _quiet()
    import faiss

    from rag.indexing import index as index_mod
    from rag.indexing import lifecycle, vectors
    from rag.answer.answer_models import load_answer_models
    from rag.config import Settings
    from rag.ingest.corpus import load_document
    from rag.ingest.chunks import chunk_documents
    from rag.pipeline import Pipeline
    from rag.service import Assistant

    target = args["n"]
    settings0 = Settings()
    rules = index_mod.structure_rules(settings0)
    probe = synth.documents(4, seed=7)
    _, probe_chunks = chunk_documents([load_document(n, x, rules) for n, x in probe], settings0.chunk_max_chars,
                                      settings0.chunk_overlap_sentences)
    per_doc = len(probe_chunks) / len(probe)
    n_docs = max(2, math.ceil(target / per_doc))
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        corpus.mkdir()
        for name, text in synth.documents(n_docs, seed=args.get("seed", 0)):
            (corpus / name).write_text(text, encoding="utf-8")
        settings = Settings(corpus_dir=corpus, index_dir=index_dir, embedding_model="random-384")
        embedder = RandomEmbedder()
        t = time.perf_counter()
        built = index_mod.build(settings, embedder, progress=False)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        lifecycle.publish(built, index_dir)
        save_s = time.perf_counter() - t
        chars = sum(len(d.text) for d in built.documents.values())
        initial = {"build_s": round(build_s, 2), "save_s": round(save_s, 2), "timings": built.manifest["build_timings_s"],
                   "counts": built.manifest["counts"], "chars": chars, "index": vectors.describe(built.chunk_vectors),
                   "chunks_per_s": round(built.manifest["counts"]["chunks"] / build_s, 1)}
        assistant = Assistant(Pipeline(settings, built, embedder, load_answer_models()))
        name, text = synth.documents(1, seed=999_999)[0]
        new_name = "added-" + name
        add_s = add_timings = delete_s = delete_timings = replace_s = replace_timings = None
        bm25_ms = load_s = None
        new_chunks = round(per_doc)

        def change(fn) -> tuple[float, dict]:
            t = time.perf_counter()
            fn()
            total = time.perf_counter() - t
            tm = dict(assistant.pipeline.index.manifest["build_timings_s"])
            tm["write_publish_s"] = round(total - sum(tm.values()), 3)  # the rest: writing, fsync, switch, GC
            return round(total, 3), tm

        if args.get("add", True):
            info = {}
            add_s, add_timings = change(lambda: info.update(assistant.add_document(new_name, text.encode("utf-8"))))
            new_chunks = info["chunks"]
            edited = text.replace("。", "。补充说明一句。", 1)
            replace_s, replace_timings = change(lambda: assistant.add_document(new_name, edited.encode("utf-8")))
            # BM25 at query time over the segments (the scores of every chunk and sentence for a question).
            index = assistant.pipeline.index
            qs = questions(20)
            bm25_ms = {"chunks": stats_ms(timed(index.chunk_bm25.scores, qs)),
                       "sentences": stats_ms(timed(index.sentence_bm25.scores, qs)),
                       "segments": len(index.layout.segments)}
            if args.get("delete", True):
                delete_s, delete_timings = change(lambda: assistant.delete_document(new_name))
            t = time.perf_counter()
            lifecycle.load(index_dir)  # the live build and the segments it names, checksums verified
            load_s = round(time.perf_counter() - t, 2)
        n_chunks = built.manifest["counts"]["chunks"]

    # What FAISS alone would need for the same change, where it supports it.
    X = synth.VectorSpace(0).draw(n_chunks)
    new = synth.VectorSpace(1).draw(new_chunks)
    ids = np.arange(n_chunks, n_chunks + new_chunks, dtype=np.int64)
    inc = {}
    flat = faiss.IndexIDMap(faiss.IndexFlatIP(X.shape[1]))
    flat.add_with_ids(X, np.arange(n_chunks, dtype=np.int64))
    ivf = vectors.build(X, approximate=True)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # an array direct map cannot remove ids
    for name, index in (("IndexIDMap(IndexFlatIP)", flat), ("IndexIVFFlat", ivf)):
        t = time.perf_counter()
        index.add_with_ids(new, ids)
        inc[f"{name} add_with_ids"] = time.perf_counter() - t
        t = time.perf_counter()
        index.remove_ids(ids)
        inc[f"{name} remove_ids"] = time.perf_counter() - t
    return {
        "n_target": target, "chunks": n_chunks, "documents": n_docs, "new_doc_chunks": new_chunks,
        "new_doc_chars": len(text), "initial": initial,
        "add_s": add_s, "add_timings": add_timings, "delete_s": delete_s, "delete_timings": delete_timings,
        "replace_s": replace_s, "replace_timings": replace_timings, "bm25_query_ms": bm25_ms, "load_s": load_s,
        "faiss_incremental_ms": {k: round(v * 1000, 3) for k, v in inc.items()},
    }


from bench.cmrc_build import cmrc_build  # noqa: E402 - its own module; it imports helpers from this one

WORKERS = {"review": review, "coldstart": coldstart, "scale_ours": scale_ours, "ann": ann, "crossover": crossover,
           "scale_langchain": scale_langchain, "updates": updates, "cmrc_build": cmrc_build}
