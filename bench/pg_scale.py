"""The Postgres store at 300k and 1M chunks, grown inside Postgres.

    python -m bench.pg_scale [--base 5000] [--view-copies 200] [--copies 0] [--max-rss-gb 11]

A 1M-chunk build in memory (``rag index`` from Python) needs more than a shared 24 GB machine can
give, so the database is grown in SQL instead: one synthetic build of ``--base`` chunks
(``bench.synth``, random vectors) is written with ``store.write_all``, then its rows are copied
under new names (``rNNN/<name>``, texts, terms and vectors repeating) by ``INSERT … SELECT``
inside Postgres. Measured:

- at ``--view-copies`` copies (200: about 1M chunks): a fresh process loading the whole view
  (time, resident and peak memory, memory by part as ``bench.view_memory`` sizes it; killed past
  ``--max-rss-gb``), retrieval over it, and one document added / replaced / deleted through the
  service, with another view catching up;
- at ``--copies`` copies, when more than ``--view-copies``: the database's size, the time Postgres
  took to grow to it, one document change's transaction (what the writer sends; the view splice is
  not run), reading one changed document back (what a follower reads), and pgvector exact top-50.

Results go to ``docs/benchmarks-pg-scale.json`` (a run keeps the figures it did not measure) and
the section between the PG-SCALE markers of ``docs/benchmarks.md`` (``--render-only`` re-renders
it from the JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import synth
from bench.common import MemoryGuard, RandomEmbedder, stats_ms, timed

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- PG-SCALE:BEGIN -->", "<!-- PG-SCALE:END -->"

_VIEW = """
import json, sys, time, gc
from types import SimpleNamespace
import numpy as np
from bench.common import RandomEmbedder, peak_rss_mb, questions, rss_mb, stats_ms, timed
from bench import synth
from rag.answer.answer_models import load_answer_models
from rag.answer.retriever import retrieve
from rag.config import RetrievalParams, Settings
from rag.indexing.pg import store
from rag.pipeline import Pipeline
from rag.service import Assistant

url, corpus = sys.argv[1], sys.argv[2]
out = {}
t = time.perf_counter()
view = store.load(url)
out["load_s"] = round(time.perf_counter() - t, 2)
gc.collect()
out["rss_mb"], out["peak_rss_mb"] = round(rss_mb(), 1), round(peak_rss_mb(), 1)
out["chunks"] = len(view.chunks)
from bench.view_memory import deep_size, parts
seen = set()
out["parts_mb"] = {k: round(deep_size(v, seen) / 2**20, 1) for k, v in parts(view).items()}
del seen
print(json.dumps(out), flush=True)

qs = (questions(None) * 3)[:200]
vecs = {q: v for q, v in zip(qs, RandomEmbedder(seed=3).encode(qs, True))}
fixed = SimpleNamespace(encode=lambda texts, is_query=True, progress=False: np.stack([vecs[t] for t in texts]))
params = RetrievalParams.from_settings(Settings())
out["retrieve"] = stats_ms(timed(lambda q: retrieve(view, fixed, q, params), qs, warmup=5))

settings = Settings(store=url, corpus_dir=corpus, embedding_model="random-384")
assistant = Assistant(Pipeline(settings, view, RandomEmbedder(), load_answer_models()))
name, text = synth.documents(1, seed=999_999)[0]
changes = {}
for op, fn in (("add", lambda: assistant.add_document("added-" + name, text.encode())),
               ("replace", lambda: assistant.add_document("added-" + name, text.replace("。", "。补充说明一句。", 1).encode())),
               ("delete", lambda: assistant.delete_document("added-" + name))):
    t = time.perf_counter()
    fn()
    changes[op] = {"s": round(time.perf_counter() - t, 3), "timings": assistant.pipeline.index.manifest.get("build_timings_s", {})}
t = time.perf_counter()
store.refresh(settings, view)  # the view from before the three changes: another server catching up
changes["another server catches up (3 changes)"] = {"s": round(time.perf_counter() - t, 3)}
out["changes"] = changes
out["peak_rss_mb"] = round(peak_rss_mb(), 1)
print(json.dumps(out), flush=True)
"""


def base_build(n: int, tmp: Path):
    """A synthetic build of about ``n`` chunks, in memory, and its settings."""
    from rag.config import Settings
    from rag.indexing import index as index_mod
    from rag.ingest.chunks import chunk_documents
    from rag.ingest.corpus import load_document

    settings = Settings(corpus_dir=tmp / "corpus", embedding_model="random-384")
    probe = synth.documents(4, seed=7)
    _, chunks = chunk_documents([load_document(a, b, index_mod.structure_rules(settings)) for a, b in probe],
                                settings.chunk_max_chars, settings.chunk_overlap_sentences)
    settings.corpus_dir.mkdir()
    for name, text in synth.documents(max(2, math.ceil(n / (len(chunks) / len(probe)))), seed=0):
        (settings.corpus_dir / name).write_text(text, encoding="utf-8")
    return index_mod.build(settings, RandomEmbedder(), progress=False), settings


def grow(url: str, start: int, stop: int) -> float:
    """Copy the base documents' rows (names without a folder) as copies ``start``..``stop - 1``
    in one transaction logged as a full change; returns the seconds it took."""
    from rag.indexing.pg import schema, store
    from rag.indexing.pg.connection import connect

    t = time.perf_counter()
    with connect(url) as conn, conn.transaction():
        schema.lock_writes(conn)
        conn.execute("CREATE TEMP TABLE copies ON COMMIT DROP AS SELECT 'r' || lpad(k::text, 3, '0') || '/' AS prefix "
                     "FROM generate_series(%s::int, %s::int) k", (start, stop - 1))
        base = "position('/' in t.doc_id) = 0"
        conn.execute(f"INSERT INTO rag_documents SELECT c.prefix || t.doc_id, t.text, t.sha256 "
                     f"FROM rag_documents t, copies c WHERE {base}")
        conn.execute(f"INSERT INTO rag_sentences SELECT c.prefix || t.doc_id, ord, start_at, end_at, section, citable, "
                     f"role, terms, embedding FROM rag_sentences t, copies c WHERE {base}")
        conn.execute(f"INSERT INTO rag_chunks SELECT c.prefix || t.doc_id, ord, c.prefix || chunk_id, section, start_at, "
                     f"end_at, sentence_ids, terms, embedding FROM rag_chunks t, copies c WHERE {base}")
        store.log_changes(conn, [store.ALL])
    return round(time.perf_counter() - t, 1)


def counts(url: str) -> dict:
    """Rows per table and the database's size."""
    from rag.indexing.pg.connection import connect

    with connect(url) as conn:
        out = {t: conn.execute(f"SELECT count(*) FROM rag_{t}").fetchone()[0] for t in ("documents", "sentences", "chunks")}
        out["database_mb"] = round(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20, 1)
    return out


def view_in_a_process(url: str, corpus: Path, max_rss_gb: float) -> dict:
    """Run ``_VIEW`` in a fresh process, killing it if its resident memory passes ``max_rss_gb``."""
    proc = subprocess.Popen([sys.executable, "-c", _VIEW, url, str(corpus)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
    guard = MemoryGuard(max_rss_gb)
    guard.procs.append(proc)
    try:
        stdout, stderr = proc.communicate(timeout=1500)
    finally:
        guard.stop()
    if guard.killed:
        return {"killed_at_rss_mb": guard.killed_at_mb}
    if proc.returncode:
        raise RuntimeError(stderr[-2000:])
    return json.loads(stdout.strip().splitlines()[-1])


def one_change(url: str, settings, built) -> dict:
    """One document added, replaced and deleted as the writer's transactions (``store.change``'s
    database half, no view splice), and one changed document read back as a follower reads it."""
    from rag.indexing.index import new_segment, structure_rules
    from rag.indexing.pg import records, rows, schema, store
    from rag.indexing.pg.connection import connect
    from rag.ingest.corpus import load_document

    name, text = synth.documents(1, seed=999_999)[0]
    doc_id = "added-" + name
    out = {}
    for op, body in (("add", text), ("replace", text.replace("。", "。补充说明一句。", 1)), ("delete", None)):
        docs = [load_document(doc_id, body, structure_rules(settings))] if body else []
        seg = new_segment(settings, RandomEmbedder(), built, docs)
        t = time.perf_counter()
        with connect(url) as conn, conn.transaction():
            schema.lock_writes(conn)
            rows.delete(conn, [doc_id])
            if seg is not None:
                rows.write(conn, seg, seg.documents)
                records.write(conn, doc_id, records.original_of(doc_id, body.encode()), body, None)
            else:
                records.delete(conn, [doc_id])
            store.log_changes(conn, [doc_id])
        out[op + "_write_s"] = round(time.perf_counter() - t, 3)
        if op == "replace":
            t = time.perf_counter()
            with connect(url) as conn, conn.transaction():
                seg = rows.read(conn, [doc_id])
            out["follower_reads_one_document_s"] = round(time.perf_counter() - t, 3)
            out["chunks_changed"] = seg.n_chunks
    return out


def exact_sql(url: str, n_queries: int = 10, k: int = 50) -> dict:
    """pgvector exact top-``k`` by inner product over every chunk (one connection, no parallel workers)."""
    from rag.indexing.pg.connection import connect

    rng = np.random.default_rng(11)
    qs = rng.standard_normal((n_queries, 384)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    with connect(url) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        return stats_ms(timed(lambda q: conn.execute("SELECT doc_id, ord FROM rag_chunks ORDER BY embedding <#> %s "
                                                     "LIMIT %s", (q, k)).fetchall(), qs, warmup=1))


def render(r: dict) -> str:
    """The Markdown section for docs/benchmarks.md."""
    v, d = r["view"], r["database"]
    c, w = v["changes"], d["change"]
    lines = [
        BEGIN, "", "### 300k and 1M chunks (`python -m bench.pg_scale`)", "",
        f"One synthetic build of {r['base']['chunks']:,} chunks was written with `store.write_all` and its rows copied "
        f"inside Postgres (`INSERT … SELECT`, names `rNNN/…`, texts, terms and vectors repeating) to {v['chunks']:,} "
        f"chunks, where a fresh process loaded the whole view (`store.load`) and served through the service. Same "
        f"machine and Postgres as above, 2 cores shared with other work.", "",
        "| chunks | view | database MiB | grown in SQL s | load s | RSS MiB | peak RSS MiB | retrieve p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|"]
    for label, x in (("one object per row, float32 (before)", r.get("view_before")), ("columns, float16", v)):
        if x:
            lines.append(f"| {x['chunks']:,} | {label} | {x['database_mb']} | {x['grow_s']} | {x['load_s']} | "
                         f"{x['rss_mb']:,} | {x['peak_rss_mb']:,} | {x['retrieve']['p50']:.2f} | {x['retrieve']['p95']:.2f} |")
    lines += ["", "Where a view's memory goes, MiB per 100k chunks (`python -m bench.view_memory URL`: each part's "
              "objects walked, each counted once; *before* measured at "
              f"{r['breakdown_before']['chunks']:,} chunks, *now* in the {v['chunks']:,}-chunk run above):", "",
              "| part | before | now |", "|---|---|---|"]
    before, now = r["breakdown_before"], v
    for part in now["parts_mb"]:
        per = [x["parts_mb"][part] / x["chunks"] * 100_000 for x in (before, now)]
        lines.append(f"| {part} | {per[0]:.1f} | {per[1]:.1f} |")
    totals = [sum(x["parts_mb"].values()) / x["chunks"] * 100_000 for x in (before, now)]
    lines += [f"| **sum of the parts** | **{totals[0]:.0f}** | **{totals[1]:.0f}** |", "",
              "What changed (`rag.indexing.pg.rows`): rows are streamed from the cursor into preallocated columns; "
              "sentences and chunks are numpy columns whose objects are made when read (`SentenceTable`, "
              "`ChunkTable`), not one frozen dataclass per row with its own strings; sentence vectors are kept as "
              "float16 and widened to float32 only for the rows a question reads; BM25 postings are int32 rows and "
              "uint16 counts, terms int32. Chunk vectors and the FAISS index are unchanged. With float16 sentence "
              "vectors the answers, their citations and spans are the same (the 174 gold questions over the review, "
              "and `tests/test_pg_store.py`); a citation's `score`, a share of the best passage's, moves by at most "
              f"{r.get('gold_float16', {}).get('max_score_diff', 0.00036):.5f}. The rest of the resident size is "
              "the interpreter and libraries (about 90 MiB) and what the allocator keeps after loading. The peak is "
              "the end of the load, while FAISS copies the chunk vectors into its index (the float32 array held "
              "twice, 1.4 GB each at this size) and the BM25 postings are built; a first run at this size, whose "
              "postings still went through int64 (text, term) pairs, passed 11.4 GB there and was stopped. Loading "
              "takes a little less per chunk than before (0.62 ms against 0.81 ms): at 19k chunks a profile put about half of it in "
              "mapping each row's terms to ids in Python and most of the rest in fetching the rows.", ""]
    lines.append(
        f"One document ({w['chunks_changed']} chunks) changed at {v['chunks']:,} chunks through the service "
        f"(`Assistant.add_document` / `delete_document`: one transaction, then the writer's view refreshed): add "
        f"{c['add']['s']} s, replace {c['replace']['s']} s, delete {c['delete']['s']} s (of which the splice and "
        f"refresh {c['replace']['timings'].get('refresh_s')} s for the replace); another view catching up on all three "
        f"{c['another server catches up (3 changes)']['s']} s. The database side alone at {d['chunks']:,} chunks "
        f"(earlier run): the writer's transaction add {w['add_write_s']} s, replace {w['replace_write_s']} s, delete "
        f"{w['delete_write_s']} s; a follower reading the changed document back {w['follower_reads_one_document_s']} s. "
        f"pgvector exact top-50 over {d['chunks']:,} chunks (no index, one connection, no parallel workers): p50 "
        f"{d['exact_top50']['p50']:.0f} ms, p95 {d['exact_top50']['p95']:.0f} ms ({d['exact_top50']['n']} queries).")
    for key in ("two_servers_first", "one_server", "two_servers_spilled", "two_servers", "answer_timings"):  # as run
        if r.get(key):
            lines += ["", r[key]["text"]]
    lines += ["", "Texts, terms and vectors repeat across copies, so the BM25 vocabulary does not grow as a real "
              "corpus's would: a real view of the same size would be somewhat larger (its vocabulary and statistics).",
              "", END]
    return "\n".join(lines)


def write_section(out: Path, section: str) -> None:
    """Put ``section`` between the PG-SCALE markers of ``out`` (after the PG-STORE section the first time)."""
    text = out.read_text(encoding="utf-8")
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        anchor = "<!-- PG-STORE:END -->"
        text = text.replace(anchor, anchor + "\n\n" + section, 1)
    out.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=5000, help="chunks of the synthetic build that is copied")
    parser.add_argument("--view-copies", type=int, default=200, help="copies at which a whole view is loaded")
    parser.add_argument("--copies", type=int, default=0,
                        help="copies at which only the database is measured (not above --view-copies: skipped)")
    parser.add_argument("--max-rss-gb", type=float, default=11.0, help="kill the view's process past this")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--render-only", action="store_true", help="re-render the section from the JSON")
    ns = parser.parse_args(argv)
    data_path = ns.out.with_name(ns.out.stem + "-pg-scale.json")
    if ns.render_only:
        write_section(ns.out, render(json.loads(data_path.read_text())))
        return 0
    sys.path.insert(0, str(ROOT))
    from rag.indexing.pg import store
    from tests.pg import new_database, remove_server, start_server

    server = start_server()
    result: dict = {"base_chunks_target": ns.base}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = new_database(server)
            t = time.perf_counter()
            built, settings = base_build(ns.base, Path(tmp))
            result["base_build_in_memory_s"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            store.write_all(url, built)
            result["base"] = counts(url) | {"write_all_s": round(time.perf_counter() - t, 2)}
            print(json.dumps(result), flush=True)
            (Path(tmp) / "service-corpus").mkdir()
            result["view"] = {"grow_s": grow(url, 1, ns.view_copies)} | counts(url)
            result["view"] |= view_in_a_process(url, Path(tmp) / "service-corpus", ns.max_rss_gb)
            print(json.dumps(result), flush=True)
            if ns.copies > ns.view_copies:
                result["database"] = {"grow_s": grow(url, ns.view_copies, ns.copies)} | counts(url)
                print(json.dumps(result), flush=True)
                result["database"]["change"] = one_change(url, settings, built)
                result["database"]["exact_top50"] = exact_sql(url)
                print(json.dumps(result), flush=True)
    finally:
        remove_server(server)
        earlier = json.loads(data_path.read_text()) if data_path.exists() else {}
        result = earlier | result  # a run with --copies 0 keeps the last database figures
        data_path.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    write_section(ns.out, render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
