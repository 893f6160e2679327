"""Where a server's in-memory view of the Postgres store spends its memory, part by part.

    python -m bench.view_memory URL

Loads the whole view from the database at ``URL`` (``rag.indexing.pg.store.load``) and sizes each
part by walking its objects (each object counted once, in the first part that reaches it):
sentence and chunk vectors, the FAISS chunk index, the per-row sentence and chunk records, the
documents' texts, BM25 terms and postings, and the row layout. Prints JSON with MiB per part, per
100k chunks, the process's resident size and its peak while loading (the peak includes whatever
loading held twice).
"""

from __future__ import annotations

import gc
import json
import sys
import time

import faiss
import numpy as np

from bench.common import peak_rss_mb, rss_mb


def deep_size(root, seen: set[int]) -> int:
    """Bytes of ``root`` and everything it reaches that ``seen`` does not hold yet (numpy arrays by
    ``nbytes`` of the memory they own; views of another array count nothing)."""
    total, stack = 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += obj.nbytes if obj.base is None else 0
            total += sys.getsizeof(obj) - (obj.nbytes if obj.base is None and obj.flags.owndata else 0)
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
            if obj.base is not None:
                stack.append(obj.base)
            continue
        if isinstance(obj, faiss.Index):
            total += faiss_bytes(obj)
            continue
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def faiss_bytes(index) -> int:
    """What a FAISS index holds (its serialised size: the codes and ids are most of it)."""
    return int(faiss.serialize_index(index).nbytes)


def parts(view) -> dict:
    """The view's parts, in the order they are sized (shared objects go to the first)."""
    segs = view.layout.segments
    return {
        "sentence vectors": [s.sentence_vectors for s in segs],
        "FAISS chunk index (chunk vectors)": [s.chunk_index for s in segs],
        "document texts": [d.text for d in view.documents.values()],
        "sentence records": [view.sentences] + [s.sentences for s in segs],
        "chunk records": [view.chunks] + [s.chunks for s in segs],
        "documents (objects, sentence tuples)": [view.documents] + [s.documents for s in segs],
        "BM25 terms (flat ids, vocabularies)": [(s.chunk_terms, s.sentence_terms) for s in segs],
        "BM25 postings": [(s.chunk_postings, s.sentence_postings) for s in segs],
        "BM25 corpus statistics": [(view.chunk_bm25.df, view.sentence_bm25.df)],
        "layout and row maps": [view.layout, view.chunk_vectors, view.sentence_vectors, view.chunk_bm25.inv,
                                view.sentence_bm25.inv] + [s.spans for s in segs],
    }


def main(argv: list[str] | None = None) -> int:
    from rag.indexing.pg import store

    url = (argv or sys.argv[1:])[0]
    from rag.answer import retriever  # noqa: F401 (what a server imports besides the store)

    before = rss_mb()
    t = time.perf_counter()
    view = store.load(url)
    load_s = time.perf_counter() - t
    gc.collect()
    out = {"chunks": len(view.chunks), "sentences": len(view.sentences), "documents": len(view.documents),
           "load_s": round(load_s, 2), "rss_after_imports_mb": round(before, 1), "rss_mb": round(rss_mb(), 1),
           "peak_rss_mb": round(peak_rss_mb(), 1)}
    seen: set[int] = set()
    per = 100_000 / out["chunks"]
    sizes = {name: deep_size(objs, seen) / 2**20 for name, objs in parts(view).items()}
    out["parts_mb"] = {k: round(v, 1) for k, v in sizes.items()}
    out["parts_mb_per_100k_chunks"] = {k: round(v * per, 1) for k, v in sizes.items()}
    out["sum_parts_mb"] = round(sum(sizes.values()), 1)
    out["rss_not_in_parts_mb"] = round(out["rss_mb"] - before - out["sum_parts_mb"], 1)
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
