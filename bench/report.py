"""The Markdown report (and its plot) written from a run's results."""

from __future__ import annotations

from pathlib import Path

MB = 1024 * 1024


def write(results: dict, out: Path) -> None:
    """Write ``out`` (Markdown) and, when matplotlib is installed, ``<stem>-scale.png`` beside it."""
    plot = out.with_name(out.stem + "-scale.png")
    has_plot = _plot(results, plot)
    text = render(results, plot.name if has_plot else None)
    # The Postgres store's sections are measured and rendered by bench.pg_store and bench.pg_scale:
    # carried over as they are, in order.
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    kept = []
    for name in ("PG-STORE", "PG-SCALE"):
        begin, end = f"<!-- {name}:BEGIN -->", f"<!-- {name}:END -->"
        if begin in old and end in old:
            kept.append(old[old.index(begin):old.index(end) + len(end)])
    if kept:
        text = text.replace("\n## Hot spots", "\n" + "\n\n".join(kept) + "\n\n## Hot spots", 1)
    out.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------ formatting helpers


def _ms(x) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def _s(x) -> str:
    if x is None:
        return "–"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def _mb(nbytes) -> str:
    return "–" if nbytes is None else f"{nbytes / MB:,.1f}"


def _n(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"{n:,}"


def _ratio(ours, theirs) -> str:
    if not ours or not theirs:
        return "–"
    return f"{ours / theirs:.2f}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _get(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def _scale_row(results: dict, n: int) -> dict | None:
    return next((r for r in results.get("scale") or [] if r["n"] == n), None)


def _ann(row: dict, kind: str) -> dict | None:
    return next((a for a in row.get("ann", []) if a["kind"] == kind), None)


def _pick(ann: dict | None, target: float = 0.95) -> dict | None:
    """The cheapest setting of an approximate index whose recall@10 reaches ``target``."""
    if not ann:
        return None
    ok = [r for r in ann["rows"] if r["recall_at_10"] >= target]
    return min(ok, key=lambda r: r["search_k50"]["p50"]) if ok else max(ann["rows"], key=lambda r: r["recall_at_10"])


# ------------------------------------------------------------------ the report


def render(results: dict, plot_name: str | None) -> str:
    meta = results.get("meta", {})
    parts = [
        "# Benchmarks: speed, memory and scale",
        "",
        "Measured by the harness in `bench/` on the machine below, side by side with the plain LangChain "
        "pipeline a user would otherwise write. Every number on this page comes from one run of",
        "",
        f"```bash\n.venv/bin/python -m bench run{' --smoke' if meta.get('smoke') else ''} --out docs/benchmarks.md\n```",
        "",
        f"({sum((results.get('durations_s') or {}).values()) / 60:.1f} minutes in all; raw results in "
        "`docs/benchmarks.json`). `--only SECTION[,SECTION]` re-runs sections (review, cold, http, crossover, "
        "scale, updates, cmrc-build) and merges them into the JSON; `python -m bench report` re-renders this page from it.",
    ]
    if meta.get("smoke"):
        parts += ["", "> **Smoke run**: tiny sizes that only prove the harness works; the numbers mean little."]
    parts += ["", _targets(results), "", _machine(meta, results.get("section_meta") or {}, results.get("durations_s") or {})]
    for section in (_review_build, _latency, _cold, _memory, _side_by_side, _cmrc_build, _scale, _choice, _updates,
                    _hot_spots):
        text = section(results, plot_name) if section is _scale else section(results)
        if text:
            parts += ["", text]
    return "\n".join(parts).rstrip() + "\n"


def _targets(results: dict) -> str:
    rows = []
    http = results.get("http") or {}
    review = results.get("review") or {}
    qe = _get(review, "latency", "query_embedding", "p50")
    for path, target in (("/search", 30.0), ("/ask", 60.0)):
        p50 = _get(http, "latency", path, "p50")
        if p50 is not None:
            why = f"query embedding alone: {_ms(qe)} ms p50 in-process" if qe else ""
            rows.append([f"p50 {path} over HTTP ≤ {target:.0f} ms", f"{_ms(p50)} ms", _verdict(p50, target, "ms"), why])
    ratio = _get(review, "build", "embed_vs_model")
    if ratio is not None:
        rows.append(["embedding during indexing within 10% of the model's own `encode`",
                     f"{ratio:.2f}× the model's throughput ({_get(review, 'build', 'embed_texts_per_s')} vs "
                     f"{_get(review, 'build', 'model_encode_texts_per_s')} texts/s)",
                     "met" if ratio >= 0.9 else f"missed by {(0.9 - ratio) * 100:.0f} points",
                     "same texts and prompt; the model's own `encode` at its default batch size"])
    rows += _cmrc_targets(results.get("cmrc-build"))
    cli = _get(results, "cold", "cli", "median_s")
    if cli is not None:
        stages = _get(results, "cold", "stages", "stages_s") or {}
        big = max(stages, key=stages.get) if stages else ""
        rows.append(["cold start to first answer ≤ 10 s (`rag ask`, built index)", f"{_s(cli)} s", _verdict(cli, 10.0, "s"),
                     f"largest stage: {big} {_s(stages.get(big))} s" if big else ""])
    srv = _get(http, "start_to_first_answer_median_s")
    if srv is not None:
        rows.append(["cold start to first answer ≤ 10 s (`rag serve` start → first /ask)", f"{_s(srv)} s", _verdict(srv, 10.0, "s"), ""])
    for n, target in ((100_000, 50.0), (1_000_000, 100.0)):
        row = _scale_row(results, n)
        if not row:
            continue
        ours = row["ours"]
        p50 = ours["fused"]["retrieve"]["p50"]
        rec = ours["dense"]["recall_at_10"]
        verdict = _verdict(p50, target, "ms")
        if n == 100_000 and rec < 0.95:
            verdict += f"; recall {rec:.3f} < 0.95"
        what = (f"{_ms(p50)} ms p50 fused retrieval, recall@10 {rec:.3f} ({ours['dense']['index']}); "
                f"peak RSS {ours['peak_rss_mb'] / 1024:.1f} GiB of {results['meta']['machine']['ram_gib']} GiB")
        sel = _get(ours, "bm25", "top50_argpartition", "p50")
        why = (f"query embedding {_ms(ours['fused']['query_embedding']['p50'])} ms, BM25 scores "
               f"{_ms(ours['bm25']['scores']['p50'])} ms + top-50 selection {_ms(sel)} ms (a full sort: "
               f"{_ms(ours['bm25']['full_argsort']['p50'])} ms), dense {_ms(ours['dense']['search_k50']['p50'])} ms")
        label = "at 100k chunks: retrieval p50 ≤ 50 ms, recall@10 ≥ 0.95" if n == 100_000 else \
            "at 1M chunks: index fits in memory, retrieval p50 ≤ 100 ms"
        rows.append([label, what, verdict, why])
    for u in results.get("updates") or []:
        if u.get("add_s") is None:
            continue
        target = 1.0 if u["chunks"] <= 20_000 else 3.0
        worst = max(x for x in (u.get("add_s"), u.get("replace_s"), u.get("delete_s")) if x is not None)
        rows.append([f"adding or deleting one ~2,000-character document at {u['chunks']:,} chunks ≤ {target:.0f} s "
                     f"(measured with a {u.get('new_doc_chars', 4171):,}-character one)",
                     f"add {_s(u['add_s'])} s, replace {_s(u.get('replace_s'))} s, delete {_s(u.get('delete_s'))} s",
                     _verdict(worst, target, "s"), "through the service; see *Adding and deleting a document*"])
    slower = _langchain_losses(results)
    if slower is not None:
        rows.append(["faster than the plain LangChain pipeline at every size measured",
                     "slower in: " + "; ".join(slower) if slower else "faster in every comparison below",
                     "met" if not slower else f"missed in {len(slower)} comparison(s)", "see the side-by-side tables"])
    if not rows:
        return ""
    return "## Targets\n\n" + _table(["target", "measured", "verdict", "what bounds it"], rows)


def _what_was_embedded(texts: int, counts: dict) -> str:
    """What a build's embedded texts were, told from their number: builds before chunk vectors were
    sentence means (``rag.indexing.index.CHUNK_VECTORS``) embedded every chunk as well."""
    if texts > counts["sentences"]:
        return "every chunk and every sentence"
    return "every sentence; chunk vectors are their means"


def _cmrc_targets(c: dict | None) -> list[list]:
    """The two build-speed targets of the CMRC section: faster than LangChain, and near the model's limit."""
    if not c:
        return []
    ours, lc, ideal = c["ours"], c["langchain"], c["ideal"]
    ratio, limit = c["ours_vs_langchain"], c["embed_vs_limit"]
    return [
        ["indexing the CMRC trial collection takes less time than LangChain's 250/50 recipe (same run)",
         f"{_s(ours['total_s'])} s against {_s(lc['total_s'])} s ({ratio:.2f}×)",
         "met" if ratio < 1 else f"missed: {ratio:.2f}× as long",
         f"tokens embedded: ours {ours['tokens']:,} ({_what_was_embedded(ours['texts'], ours['counts'])}), LangChain {lc['tokens']:,} "
         f"({ours['tokens'] / lc['tokens']:.2f}×); per token our embedding is "
         f"{(ours['tokens'] / ours['timings_s']['embed_s']) / (lc['tokens'] / lc['embed_faiss_s']):.2f}× as fast"],
        ["embedding rate within 20% of the model's own limit on ideal batches (same run)",
         f"{limit:.2f}× the limit ({ours['embed_texts_per_s']} vs {ideal['limit_texts_per_s']} texts/s)",
         "met" if limit >= 0.8 else f"missed by {(0.8 - limit) * 100:.0f} points",
         f"the same texts, sorted by token length, batch size {ideal['best_batch_size']} (the fastest of "
         f"{', '.join(map(str, ideal['sweep_texts_per_s']))})"],
    ]


def _verdict(value: float, target: float, unit: str) -> str:
    if value <= target:
        return "met"
    return f"missed by {value - target:,.1f} {unit} ({value / target:.1f}× the target)"


def _langchain_losses(results: dict) -> list[str] | None:
    """Every comparison where ours is slower than LangChain's (ratio ours/theirs > 1)."""
    found, losses = False, []
    review = results.get("review") or {}
    ours_build = _get(review, "build", "total_s")
    ours_q = _get(review, "latency", "retrieve", "p50")
    for name, lc in (review.get("langchain") or {}).items():
        found = True
        if ours_build and lc["build_s"] and ours_build > lc["build_s"]:
            losses.append(f"review build vs LangChain {name} ({ours_build / lc['build_s']:.1f}×)")
        if ours_q and lc["ensemble"]["p50"] and ours_q > lc["ensemble"]["p50"]:
            losses.append(f"review query vs LangChain {name} ({ours_q / lc['ensemble']['p50']:.2f}×)")
    for row in results.get("scale") or []:
        lc = row.get("langchain")
        if not lc:
            continue
        found = True
        ours_b = row["ours"]["bm25"]["build_s"] + row["ours"]["dense"]["build_s"]
        if ours_b > lc["build_s"]:
            losses.append(f"index build at {_n(row['n'])} ({ours_b / lc['build_s']:.2f}×)")
        if row["ours"]["fused"]["retrieve"]["p50"] > lc["ensemble"]["p50"]:
            losses.append(f"retrieval at {_n(row['n'])} ({row['ours']['fused']['retrieve']['p50'] / lc['ensemble']['p50']:.2f}×)")
    return losses if found else None


def _machine(meta: dict, sections: dict, durations: dict) -> str:
    m = meta.get("machine", {})
    v = m.get("versions", {})
    libs = ", ".join(f"{k} {val}" for k, val in v.items())
    return "\n".join([
        "## Machine",
        "",
        f"- {m.get('nproc')} cores: {m.get('cpu')} ({', '.join(m.get('simd', []))}); {m.get('ram_gib')} GiB RAM; no GPU; {m.get('os')}",
        f"- Python {m.get('python')}; torch intra-op threads: {m.get('torch_threads')}",
        f"- {libs}",
        "- when each section ran, for how long, and the machine's load average (1/5/15 min) before and after it "
        "(other processes on the machine make every latency worse; see *Hot spots* on threads):",
        "",
        _table(["section", "started", "minutes", "load before", "load after"],
               [[k, v.get("started", "?"), f"{(durations.get(k) or 0) / 60:.1f}", v.get("load_before"), v.get("load_after")]
                for k, v in sections.items()]),
    ])


def _review_build(results: dict) -> str:
    b = _get(results, "review", "build")
    if not b:
        return ""
    r = results["review"]
    split = b["split_s"]
    total = sum(split.values())
    rows = [[k, _s(v), f"{v / total * 100:.1f}%" if total else "–"] for k, v in split.items()]
    c = b["counts"]
    return "\n".join([
        "## Index build (the review, real model)",
        "",
        f"`rag.indexing.index.build` over `corpus/` ({c['documents']} document, {c['sentences']} sentences, {c['chunks']} chunks; "
        f"{b['embedded_texts']} distinct passages embedded: {_what_was_embedded(b['embedded_texts'], c)}), median of {b['reps']} builds "
        f"with the model already loaded (load: {_s(r['model_load_s'])} s; jieba dictionary: {_s(r['jieba_init_s'])} s, once per process):",
        "",
        f"**{_s(b['total_s'])} s per build, {b['chunks_per_s']:.1f} chunks/s** "
        f"({b['embedded_texts'] / b['total_s']:.1f} embedded passages/s).",
        "",
        _table(["stage", "seconds", "share"], rows),
        "",
        f"Embedding throughput during indexing ({r.get('embedding_backend', 'sentence-transformers')} backend): "
        f"{b['embed_texts_per_s']} texts/s; the model's own `SentenceTransformer.encode` on the same texts and prompt "
        f"at its default batch size ({b.get('model_encode_batch_size', 32)}): {b['model_encode_texts_per_s']} texts/s "
        f"(ratio {b['embed_vs_model']:.2f}). Embedding is {split['embed'] / total * 100:.0f}% of the build.",
        "",
        "Reproduce: `python -m bench run --only review` (section *review*).",
    ])


def _latency(results: dict) -> str:
    lat = _get(results, "review", "latency")
    http = results.get("http") or {}
    if not lat and not http:
        return ""
    parts = ["## Latency (the review as corpus, warm)"]
    if lat:
        rows = [[name, lat[key]["p50"], lat[key]["p95"], lat[key]["n"]] for name, key in (
            ("query embedding alone (`Embedder.encode`, 1 question)", "query_embedding"),
            ("`Pipeline.retrieve`", "retrieve"), ("`Pipeline.search`", "search"), ("`Pipeline.ask`", "ask"))]
        torch_q = lat.get("query_embedding_torch")
        if torch_q:
            rows.append(["query embedding by the other backend, torch (`RAG_EMBEDDING_BACKEND=sentence-transformers`)",
                         torch_q["p50"], torch_q["p95"], torch_q["n"]])
        parts += ["", f"In-process, {lat['questions']} single-turn questions of the gold set, {lat['calls']} calls each "
                  "(milliseconds):", "",
                  _table(["call", "p50 ms", "p95 ms", "calls"], [[a, _ms(b), _ms(c), d] for a, b, c, d in rows]),
                  "", f"Inside `ask` (median of its own `timings_ms`): retrieval {_ms(lat['ask_parts_ms']['retrieve'])} ms, "
                  f"answer selection {_ms(lat['ask_parts_ms']['answer'])} ms."]
    if http.get("latency"):
        rows = [[f"POST {p}", _ms(v["p50"]), _ms(v["p95"]), v["n"]] for p, v in http["latency"].items()]
        parts += ["", "Over HTTP: `rag serve` (uvicorn) in its own process on 127.0.0.1, one keep-alive `httpx` client, "
                  "requests one after another:", "", _table(["request", "p50 ms", "p95 ms", "calls"], rows)]
    parts += ["", "Reproduce: `python -m bench run --only review,http`."]
    return "\n".join(parts)


def _cold(results: dict) -> str:
    cold = results.get("cold")
    http = results.get("http") or {}
    if not cold and "start_to_first_answer_s" not in http:
        return ""
    parts = ["## Cold start to the first answer (index already built)"]
    if cold:
        parts += ["", f"`rag ask \"…\" --json` in a new process, wall time: median **{_s(cold['cli']['median_s'])} s** "
                  f"(runs: {', '.join(_s(x) for x in cold['cli']['wall_s'])} s). Where the time goes, timed stage by stage "
                  "in a fresh process:", "",
                  _table(["stage", "seconds"], [[k, _s(v)] for k, v in cold["stages"]["stages_s"].items()] +
                         [["total", _s(cold["stages"]["total_s"])]])]
    if "start_to_first_answer_s" in http:
        parts += ["", f"`rag serve` from process start to the first `/ask` answer: median **{_s(http['start_to_first_answer_median_s'])} s** "
                  f"(runs: {', '.join(_s(x) for x in http['start_to_first_answer_s'])} s)."]
    parts += ["", "Reproduce: `python -m bench run --only cold,http`."]
    return "\n".join(parts)


def _memory(results: dict) -> str:
    mem = _get(results, "http", "memory")
    if not mem:
        return ""
    return "\n".join([
        "## Memory of the server",
        "",
        f"`rag serve` over the review: resident memory {mem['after_start']['rss_mb']:,.0f} MiB when ready, "
        f"{mem['after_load']['rss_mb']:,.0f} MiB after the latency runs; peak (kernel high-water mark VmHWM) "
        f"**{mem['after_load']['peak_rss_mb']:,.0f} MiB**. Nearly all of it is the model "
        "(multilingual-e5-small keeps a 250k-token embedding table: 470 MB of float32 weights) and onnxruntime; "
        "the review's index is tiny. "
        "Memory at larger corpora is in *Scale* below.",
        "",
        "Reproduce: `python -m bench run --only http`.",
    ])


def _side_by_side(results: dict) -> str:
    review = results.get("review") or {}
    lc = review.get("langchain")
    if not lc:
        return ""
    ours_build = review["build"]["total_s"]
    ours_q = review["latency"]["retrieve"]
    rows = []
    for name, v in lc.items():
        rows.append([f"LangChain, {name}", v["chunks"], _s(v["build_s"]), _ratio(ours_build, v["build_s"]),
                     _ms(v["ensemble"]["p50"]), _ms(v["ensemble"]["p95"]), _ratio(ours_q["p50"], v["ensemble"]["p50"]),
                     _ms(v["faiss_only"]["p50"])])
    c = review["build"]["counts"]
    return "\n".join([
        "## Side by side with the plain LangChain pipeline (the review)",
        "",
        "The recipe a user would write: `RecursiveCharacterTextSplitter` → `HuggingFaceEmbeddings` over the same converted "
        "model folder → `FAISS.from_documents`, plus `BM25Retriever` (rank_bm25, `preprocess_func=jieba.lcut`) in an "
        "`EnsembleRetriever` (weights 0.5/0.5, k=6 each). Build = split + embed + both indexes, model already loaded "
        "(LangChain's model load: " + _s(review.get("langchain_model_load_s")) + " s). Query = `EnsembleRetriever.invoke` "
        "against our `Pipeline.retrieve` (embedding the question included on both sides). Ratios are ours / theirs: "
        "below 1 means we are faster.",
        "",
        f"Ours: {c['chunks']} chunks, {c['sentences']} sentences ({_what_was_embedded(review['build']['embedded_texts'], c)}), build {_s(ours_build)} s; retrieve p50 "
        f"{_ms(ours_q['p50'])} ms, p95 {_ms(ours_q['p95'])} ms.",
        "",
        _table(["pipeline", "chunks", "build s", "build ratio", "query p50 ms", "query p95 ms", "query ratio",
                "FAISS-only query p50 ms"], rows),
        "",
        "Our build embeds every sentence (sentence vectors pick the quoted sentences), so it "
        "embeds several times as many texts as LangChain's default splitter, whose 4,000-character chunks make very few "
        "(and silently truncated: e5 reads 512 tokens) passages. The comparison at equal chunk size is the `chunk_size 300` "
        "row. Query latency is dominated on both sides by embedding the question.",
        "",
        "Reproduce: `python -m bench run --only review`.",
    ])


def _cmrc_build(results: dict) -> str:
    c = results.get("cmrc-build")
    if not c:
        return ""
    ours, lc, ideal = c["ours"], c["langchain"], c["ideal"]
    t, n = ours["timings_s"], ours["counts"]
    rows = [["ours: `rag.indexing.index.build`", f"**{_s(ours['total_s'])}**", f"{n['chunks']:,} chunks, {n['sentences']:,} sentences",
             f"{ours['texts']:,}", f"{ours['tokens']:,}", f"{ours['embed_texts_per_s']}", c["ours"].get("load_after")],
            [f"LangChain: split {lc.get('chunk_size', 250)}/{lc.get('chunk_overlap', 50)} on Chinese punctuation + "
             "`FAISS.from_documents`", f"**{_s(lc['total_s'])}**", f"{lc['chunks']:,} chunks", f"{lc['chunks']:,}",
             f"{lc['tokens']:,}", f"{lc['texts_per_s']}", lc.get("load_after")],
            [f"the model alone, ideal batches of our texts (batch {ideal['best_batch_size']})", _s(ideal["full_pass_s"]),
             "–", f"{ours['texts']:,}", f"{ours['tokens']:,}", f"{ideal['full_pass_texts_per_s']}", ideal.get("load_after")]]
    sweep = ", ".join(f"{b}: {v}" for b, v in ideal["sweep_texts_per_s"].items())
    return "\n".join([
        "## Indexing the CMRC trial collection: ours, LangChain's recipe, and the model's limit",
        "",
        f"The CMRC 2018 trial split as `rag eval --suite cmrc` indexes it: {c['corpus']['documents']} paragraphs, "
        f"{c['corpus']['chars']:,} characters, one document each. Measured one after another in one process, model "
        f"loaded (ours: onnxruntime; LangChain's `HuggingFaceEmbeddings`: torch, as a user's recipe runs it); load "
        f"average before: {c.get('load_before')}, after each row in the last column.",
        "",
        _table(["build", "seconds", "units", "texts embedded", "tokens embedded", "texts/s", "load after"], rows),
        "",
        f"Ours / LangChain: **{c['ours_vs_langchain']:.2f}×** the time. Our stages (s): "
        + ", ".join(f"{k.removesuffix('_s')} {_s(v)}" for k, v in t.items()) + ". "
        f"Embedding rate / the model's limit: **{c['embed_vs_limit']:.2f}**. The limit is the same texts with the "
        f"passage prompt, sorted by token length and run batch by batch (`encode_batch`, one run per core at once); "
        f"batch sizes tried on every {c.get('sweep_every', 8)}th text (texts/s): {sweep}; then every text at the "
        f"fastest size ({ideal['full_pass_texts_per_s']} texts/s). The limit is the faster of the two "
        f"({ideal['limit_texts_per_s']} texts/s): the slower met more of the machine's other work.",
        "",
        "What the build embeds: every sentence once (a quoted sentence is picked by its own vector); a chunk's vector "
        "is the unit-length mean of its sentences' (`rag.indexing.index.chunk_vectors_of`), no model call. Until "
        "2026-11-28 it embedded every chunk's text as well: 210,937 tokens, 1.96× LangChain's, and 96.56 s against "
        "74.27 s (1.30×). Quality with the mean, abstention rule refitted on it (`rag fit --only-rule`): CMRC (1,000 "
        "questions) doc@1 .977→.971, ans@1 .799→.799, ans@cite .848→.844, short F1 .585→.583, abstained .001→.003; "
        "the review's key_facts .718→.728, false abstention .023→.012, abstention recall .847→.827 (two more "
        "unanswerable questions answered). Scoring a chunk by its best sentence instead (exact search over sentence "
        "vectors, rule refitted) lifted CMRC's sample but failed the review gate (key_facts .718→.686, false "
        "abstention .023→.058). The same code measured earlier the same day on a less busy machine (load 1.1 "
        "before, 3.9 after): 92.85 s against 167 s (0.56×), embedding at 0.96 of the model's limit.",
        "",
        "Reproduce: `python -m bench run --only cmrc-build`.",
    ])


def _scale(results: dict, plot_name: str | None) -> str:
    scale = results.get("scale")
    if not scale:
        return ""
    parts = [
        "## Scale: synthetic corpora of 10k, 100k and 1M chunks" if not results["meta"].get("smoke") else "## Scale (smoke sizes)",
        "",
        "**The vectors at these sizes are seeded random unit vectors, not embeddings** (embedding a million chunks on "
        "this CPU takes hours). They are drawn near a random 16-dimensional subspace of R^384 plus a little noise "
        "(`bench/synth.py`, `VectorSpace`), so that nearest neighbours have a real margin as embeddings do; uniform random "
        "384-d vectors have none, and on them every approximate index scores badly. Recall@10 is against exact search, "
        "over queries that are half perturbed copies of stored vectors and half fresh random draws, searched 50 deep "
        "as the retriever does. Recall on real embeddings will differ: re-check it when a real large corpus exists. "
        "BM25 terms are the review's jieba search terms recombined (two or three sentences per chunk, 30% of the terms "
        "swapped by frequency), drawn without text because jieba over 1M chunks alone takes many minutes. "
        "Queries for BM25 and fused retrieval are the gold set's real questions (embedded by the real model).",
    ]
    rows = []
    for row in scale:
        o = row["ours"]
        rows.append([_n(row["n"]), o["mean_terms_per_chunk"], o["bm25"].get("vocab", "–"), _s(o["bm25"]["build_s"]),
                     _mb(o["bm25"]["bytes"]), _ms(o["bm25"]["scores"]["p50"]), _ms(o["bm25"]["scores"]["p95"]),
                     _ms(o["bm25"]["full_argsort"]["p50"]), _ms(_get(o, "bm25", "top50_argpartition", "p50"))])
    parts += ["", "### BM25 (bm25s sparse matrix, `rag.indexing.lexical.Bm25`)", "",
              "Scoring reads the posting lists of the question's terms (no Python loop over documents). The retriever "
              "then selects the top 50 by `argpartition` (`rag.answer.retriever.top_indices`, last column); a full stable "
              "`argsort`, which it used before, is shown for comparison.",
              "The vocabulary is the review's (about a thousand search terms), so every term's posting list is long: "
              "a real corpus of this size has a far larger vocabulary and shorter lists, so scoring here is pessimistic.", "",
              _table(["chunks", "terms/chunk", "vocabulary", "build s", "index MiB", "scores p50 ms", "scores p95 ms",
                      "full argsort p50 ms", "top-50 argpartition p50 ms"], rows)]
    rows = []
    for row in scale:
        for kind in ("flat", "ivf", "hnsw"):
            a = _ann(row, kind)
            if not a:
                continue
            for r in a["rows"]:
                param = {"flat": "exact", "ivf": f"nlist={a.get('nlist')} nprobe={r['param']}",
                         "hnsw": f"M={a.get('M')} efSearch={r['param']}"}[kind]
                rows.append([_n(row["n"]), {"flat": "IndexFlatIP", "ivf": "IndexIVFFlat", "hnsw": "IndexHNSWFlat"}[kind], param,
                             _s(a["build_s"]), _mb(a["bytes"]), _ms(r["search_k50"]["p50"]), _ms(r["search_k50"]["p95"]),
                             f"{r['recall_at_10']:.3f}", f"{r['recall_perturbed']:.3f} / {r['recall_fresh']:.3f}"])
    hnsw_missing = [_n(r["n"]) for r in scale if not _ann(r, "hnsw")]
    parts += ["", "### FAISS: exact against approximate (one query at a time, k=50)", "",
              _table(["chunks", "index", "setting", "build s", "index MiB", "p50 ms", "p95 ms", "recall@10",
                      "recall perturbed / fresh"], rows)]
    if hnsw_missing:
        parts += ["", _hnsw_extrapolation(scale, hnsw_missing)]
    rows = []
    for row in scale:
        o, lc = row["ours"], row.get("langchain")
        ours_build = o["bm25"]["build_s"] + o["dense"]["build_s"]
        rows.append([
            _n(row["n"]), o["dense"]["index"], f"{o['dense']['recall_at_10']:.3f}",
            _s(ours_build), _s(lc["build_s"]) if lc else "–", _ratio(ours_build, lc and lc["build_s"]),
            _ms(o["fused"]["retrieve"]["p50"]), _ms(o["fused"]["retrieve"]["p95"]),
            _ms(lc["ensemble"]["p50"]) if lc else "–", _ratio(o["fused"]["retrieve"]["p50"], lc and lc["ensemble"]["p50"]),
            _ms(lc["bm25"]["p50"]) if lc else "–",
            f"{o['peak_rss_mb'] / 1024:.2f}", f"{lc['rss_delta_mb'] / 1024:.2f}" if lc else "–",
        ])
    parts += ["", "### Retrieval end to end at scale, ours against LangChain's", "",
              "Ours: `rag.answer.retriever.retrieve` (embed the question with the real model, BM25 over all chunks, the production "
              "FAISS index from `rag.indexing.vectors.build`, reciprocal-rank fusion) over the synthetic chunks. LangChain: "
              "`EnsembleRetriever` of `BM25Retriever` (rank_bm25) and the `FAISS` vector store (`FAISS.from_embeddings`, "
              "exact `IndexFlatL2`), the question embedded by `HuggingFaceEmbeddings`, the documents given to both "
              "already cut into the same terms (jieba cuts the questions). Build = BM25 + vector index from ready "
              "vectors. Ratios are ours / theirs.", "",
              _table(["chunks", "our dense index", "our recall@10", "our build s", "LC build s", "build ratio",
                      "our p50 ms", "our p95 ms", "LC p50 ms", "query ratio", "LC BM25 alone p50 ms",
                      "our worker peak RSS GiB", "LC index RSS GiB"], rows)]
    for row in scale:
        if row.get("langchain_error"):
            parts += ["", f"LangChain at {_n(row['n'])} chunks did not finish: `{row['langchain_error'].strip().splitlines()[-1][:300]}`"]
    parts += ["", "Memory: *index MiB* is the serialized size of the structure (what it holds in RAM); *peak RSS* is the whole "
              "measuring process (model, the vectors as generated, the BM25 build's token lists, the index)."]
    if plot_name:
        parts += ["", f"![p50 latency and index memory against corpus size]({plot_name})"]
    parts += ["", "Reproduce: `python -m bench run --only scale` (and `--only crossover` for the table below)."]
    return "\n".join(parts)


def _hnsw_extrapolation(scale: list[dict], missing: list[str]) -> str:
    measured = [(r["n"], _ann(r, "hnsw")) for r in scale if _ann(r, "hnsw")]
    if not measured:
        return f"HNSW was not built at {', '.join(missing)}."
    n0, a0 = measured[-1]
    import math

    lines = []
    for r in scale:
        if _ann(r, "hnsw"):
            continue
        n = r["n"]
        est = a0["build_s"] * (n / n0) * (math.log(n) / math.log(n0))
        mem = a0["bytes"] * n / n0
        lines.append(f"{_n(n)}: about {est / 60:.0f} minutes to build and {mem / MB:,.0f} MiB")
    return ("HNSW was **not built** at " + ", ".join(missing) + " (time budget: the build is single-pass but slow on 2 "
            f"cores). Extrapolated from the {_n(n0)} build ({_s(a0['build_s'])} s, n·log n) and its size (linear): "
            + "; ".join(lines) + ". Not measured.")


def _choice(results: dict) -> str:
    cross = results.get("crossover")
    if not cross:
        return ""
    rows = []
    for r in cross["rows"]:
        f, i = r["flat"], r["ivf"]
        rows.append([_n(r["n"]), _ms(f["search_k50"]["p50"]), i["index"], _s(i["build_s"]), _ms(i["search_k50"]["p50"]),
                     f"{i['recall_at_10']:.3f}", _ratio(f["search_k50"]["p50"], i["search_k50"]["p50"])])
    scale = results.get("scale") or []
    lines = ["## Which index by corpus size (`rag/indexing/vectors.py`)", "",
             f"Exact `IndexFlatIP` up to {cross['exact_max']:,} vectors, `IndexIVFFlat` above it (about sqrt(n) cells, "
             f"nprobe {cross['nprobe']}). Exact against the production IVF settings at small sizes "
             "(same synthetic vectors, k=50):", "",
             _table(["vectors", "exact p50 ms", "IVF", "IVF build s", "IVF p50 ms", "IVF recall@10", "exact / IVF time"], rows)]
    notes = []
    for row in scale:
        ivf, hnsw = _ann(row, "ivf"), _ann(row, "hnsw")
        if ivf and hnsw:
            pi, ph = _pick(ivf), _pick(hnsw)
            notes.append(f"at {_n(row['n'])}: IVF builds in {_s(ivf['build_s'])} s and reaches recall {pi['recall_at_10']:.3f} at "
                         f"nprobe {pi['param']} ({_ms(pi['search_k50']['p50'])} ms); HNSW builds in {_s(hnsw['build_s'])} s "
                         f"({hnsw['build_s'] / max(ivf['build_s'], 1e-9):.0f}×) and reaches {ph['recall_at_10']:.3f} at efSearch "
                         f"{ph['param']} ({_ms(ph['search_k50']['p50'])} ms)")
    lines += ["", "Why IVF rather than HNSW above the threshold: both answer in a few milliseconds, far below the cost of "
              "embedding the question, but the service rebuilds the whole index whenever a document is added or deleted "
              "(with vector reuse), so build time is paid on every change, and HNSW cannot delete. "
              + ("; ".join(notes) + "." if notes else ""),
              "", "Why the threshold: exact search grows linearly with the corpus (tens of milliseconds at 100k, hundreds "
              "at 1M) while IVF stays in single-digit milliseconds. Exact search is kept while it costs less than about "
              "5 ms, a tenth of embedding the question, because it is exact and needs no training. "
              "`load` re-applies nprobe from the index's shape (faiss 1.15.1's `write_index` does keep nprobe and HNSW's "
              "efSearch: checked; the scale runs verify identical results after save/load)."]
    return "\n".join(lines)


def _updates(results: dict) -> str:
    ups = results.get("updates")
    if not ups:
        return ""
    rows, notes = [], []
    for u in ups:
        ini = u["initial"]
        initial_s = ini["build_s"] + ini["save_s"]
        initial_tm = {**ini["timings"], "write_publish_s": ini["save_s"]}
        for label, secs, tm in (("initial build + save", initial_s, initial_tm),
                                ("add one document", u.get("add_s"), u.get("add_timings")),
                                ("replace it (one sentence edited)", u.get("replace_s"), u.get("replace_timings")),
                                ("delete it again", u.get("delete_s"), u.get("delete_timings"))):
            if secs is None:
                continue
            rows.append([f"{u['chunks']:,}", label, f"**{_s(secs)}**"] + [
                _s(tm.get(k)) for k in ("read_split_s", "chunk_s", "bm25_s", "embed_s", "faiss_s", "splice_s", "merge_s",
                                        "write_publish_s")])
        if u.get("add_s") is None:
            notes.append(f"At {u['chunks']:,} chunks only the initial build was run (time budget).")
    inc_rows = []
    for u in ups:
        for k, v in u["faiss_incremental_ms"].items():
            inc_rows.append([f"{u['chunks']:,}", k, _ms(v)])
    first = ups[0]
    parts = [
        "## Adding and deleting a document",
        "",
        "Through the service (`Assistant.add_document` / `delete_document`: write the file, then "
        "`rag.indexing.lifecycle.update`: index the one document and publish) over synthetic text documents "
        "(recombined review sentences, about "
        f"{first['chunks'] / max(first['documents'], 1):.0f} chunks each), random vectors standing in for the model. "
        f"The new document has {first['new_doc_chunks']} chunks and is named so that it sorts before every other "
        "document (every row of the live view after it moves: the worst case for the splice). "
        "A change splits, BM25-tokenises and embeds only the changed document into a new segment "
        "(`rag.indexing.segments`), tombstones the old version, splices the live view (row lists copied, chunk ids "
        "moved lazily, BM25 statistics updated from the changed document only) and publishes a build folder "
        "holding only the new segment and a manifest naming the live build's segments, by the same atomic "
        "switch of `CURRENT`. BM25 is scored at query time from each segment's postings with the live corpus's "
        "statistics, so nothing corpus-sized is rebuilt or written.",
        "",
        _table(["chunks", "operation", "total s", "read+split s", "chunk s", "BM25 s", "embed s (random)", "FAISS s",
                "splice s", "merge s", "write+publish s"], rows),
        "",
        "write+publish is the rest of the total: the segment's files and manifest written and fsynced, the "
        "pointer switched, garbage collected (and, for the add, listing the documents the service returns).",
        "",
        "Not in this table: merges (`rag.indexing.segments.merge_plan`). With more than 8 segments the newest are "
        "merged into one as part of the change that makes the ninth (small segments: cheap); the big first segment "
        "is merged only when the others together reach half its size, and every segment is compacted when "
        "tombstoned rows pass 25%: such a merge re-packs a corpus-sized segment (vectors, FAISS index, postings, "
        "files) inside that one change, synchronously.",
    ]
    for u in ups:
        ini = u["initial"]
        parts += ["", f"Initial build at {u['chunks']:,} chunks ({u['documents']:,} documents, {ini['chars']:,} characters, "
                  f"{ini['counts']['sentences']:,} sentences, index `{ini['index']}`): {ini['chunks_per_s']:,.0f} chunks/s "
                  "without embedding."]
    q_rows = []
    for u in ups:
        q = u.get("bm25_query_ms")
        if q:
            q_rows.append([f"{u['chunks']:,}", q["segments"], _ms(q["chunks"]["p50"]), _ms(q["chunks"]["p95"]),
                           _ms(q["sentences"]["p50"]), _ms(q["sentences"]["p95"]), _s(u.get("load_s"))])
    if q_rows:
        parts += ["", "BM25 at query time over the segments after these changes (every chunk's and every sentence's "
                  "score for a gold-set question, 20 questions; the question's embedding costs about 15 ms), and "
                  "loading the live build with the segments it names, checksums verified. This is the price of "
                  "keeping no score matrix: each query computes its terms' scores from the postings, several times "
                  "what reading bm25s's precomputed matrix cost (the *Scale* section still measures that matrix, "
                  "`rag.indexing.lexical.Bm25`, which the index no longer uses):", "",
                  _table(["chunks", "segments", "chunk BM25 p50 ms", "p95 ms", "sentence BM25 p50 ms", "p95 ms",
                          "load s"], q_rows)]
    parts += [""] + notes if notes else []
    parts += [
        "",
        "What FAISS alone needs for the same change, where it supports it (each segment has a FAISS index of its "
        "own, so the live ones are never changed; HNSW has no `remove_ids`):",
        "",
        _table(["chunks", "operation", "ms"], inc_rows),
        "",
        "Reproduce: `python -m bench run --only updates`.",
    ]
    return "\n".join(parts)


def _hot_spots(results: dict) -> str:
    lines = ["## Hot spots", ""]
    lat = _get(results, "review", "latency")
    if lat:
        torch_q = lat.get("query_embedding_torch")
        text = (f"- **Embedding the question** is most of every query: {_ms(lat['query_embedding']['p50'])} ms of the "
                f"{_ms(lat['retrieve']['p50'])} ms p50 of `Pipeline.retrieve` (12 transformer layers over 20-40 tokens "
                "on two cores; everything after it, BM25, FAISS, fusion and answer selection, takes a few ms).")
        if torch_q:
            text += (f" The same model run by torch through sentence-transformers took {_ms(torch_q['p50'])} ms "
                     f"(p95 {_ms(torch_q['p95'])} ms): that is why onnxruntime on a one-time ONNX export is the default "
                     "backend; the vectors agree to cosine 0.9999 (`tests/test_onnx_embedder.py`).")
        lines.append(text)
    stages = _get(results, "cold", "stages", "stages_s")
    if stages:
        lines.append(f"- **Cold start**: loading the model takes {_s(stages.get('load model'))} s (onnxruntime reading "
                     "and optimising the 470 MB graph; torch is never imported: `import sentence_transformers` alone "
                     "took about 11 s here). The index loads and verifies in "
                     f"{_s(stages.get('load + verify index'))} s.")
    for row in results.get("scale") or []:
        if row["n"] >= 100_000:
            o = row["ours"]
            lines.append(f"- At {_n(row['n'])} chunks a full sort of every BM25 score (`np.argsort(..., kind='stable')`, "
                         f"what `rag.answer.retriever.retrieve` did first) took {_ms(o['bm25']['full_argsort']['p50'])} ms, against "
                         f"{_ms(o['bm25']['scores']['p50'])} ms for the scores themselves; it now selects the top 50 "
                         f"(`top_indices`, by `np.partition`) in {_ms(_get(o, 'bm25', 'top50_argpartition', 'p50'))} ms.")
    ups = [u for u in results.get("updates") or [] if u.get("add_s")]
    if ups:
        u = ups[-1]
        tm = u["add_timings"]
        lines.append(f"- Adding one document at {u['chunks']:,} chunks takes {_s(u['add_s'])} s and deleting it "
                     f"{_s(u.get('delete_s'))} s: the document is split, tokenised and embedded into a segment of its "
                     f"own ({_s(tm.get('bm25_s'))} s of BM25 terms and postings), the live view is spliced "
                     f"({_s(tm.get('splice_s'))} s) and only the segment and a manifest are written "
                     f"({_s(tm.get('write_publish_s'))} s with publishing); nothing corpus-sized is rebuilt.")
    for row in results.get("scale") or []:
        if row["n"] >= 100_000:
            o = row["ours"]
            lines.append(f"- bm25s builds its score matrix in Python loops over documents (`_calculate_doc_freqs`, a "
                         "`Counter` per document: 10 s at 100k chunks and 101 s at 1M in the previous run). "
                         "`rag.indexing.lexical.VectorisedBM25` builds the same matrix with numpy through bm25s's "
                         f"`build_index_from_ids` hook: {_s(o['bm25']['build_s'])} s at {_n(row['n'])} chunks from ready terms.")
            break
    return "\n".join(lines) if len(lines) > 2 else ""


# ------------------------------------------------------------------ the plot


def _plot(results: dict, path: Path) -> bool:
    scale = results.get("scale")
    if not scale:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ns = [r["n"] for r in scale]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    series = {
        "ours: fused retrieval (incl. question embedding)": [r["ours"]["fused"]["retrieve"]["p50"] for r in scale],
        "ours: BM25 scores": [r["ours"]["bm25"]["scores"]["p50"] for r in scale],
        "ours: production FAISS index": [r["ours"]["dense"]["search_k50"]["p50"] for r in scale],
        "FAISS exact (IndexFlatIP)": [(_ann(r, "flat") or {"rows": [{"search_k50": {"p50": None}}]})["rows"][0]["search_k50"]["p50"] for r in scale],
        "LangChain: EnsembleRetriever": [_get(r, "langchain", "ensemble", "p50") for r in scale],
        "LangChain: BM25Retriever": [_get(r, "langchain", "bm25", "p50") for r in scale],
    }
    for label, ys in series.items():
        pts = [(n, y) for n, y in zip(ns, ys) if y is not None]
        if pts:
            ax1.plot(*zip(*pts), marker="o", label=label, linestyle="--" if label.startswith("LangChain") else "-")
    ax1.set(xscale="log", yscale="log", xlabel="chunks", ylabel="p50 latency, ms", title="Query latency (p50)")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7)
    mem = {
        "ours: BM25 index": [r["ours"]["bm25"]["bytes"] / MB for r in scale],
        "ours: production FAISS index": [r["ours"]["dense"]["bytes"] / MB for r in scale],
        "FAISS HNSW (M=32)": [(_ann(r, "hnsw") or {}).get("bytes", 0) / MB or None for r in scale],
        "ours: measuring process peak RSS": [r["ours"]["peak_rss_mb"] for r in scale],
        "LangChain: index RSS growth": [_get(r, "langchain", "rss_delta_mb") for r in scale],
    }
    for label, ys in mem.items():
        pts = [(n, y) for n, y in zip(ns, ys) if y]
        if pts:
            ax2.plot(*zip(*pts), marker="o", label=label, linestyle="--" if label.startswith("LangChain") else "-")
    ax2.set(xscale="log", yscale="log", xlabel="chunks", ylabel="MiB", title="Memory")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=7)
    fig.suptitle("Synthetic corpora, random 384-d vectors (not embeddings); 2-core CPU", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
