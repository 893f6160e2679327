"""The benchmark run: every section in order, results to JSON, then the Markdown report and plot."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report, server
from bench.common import CORPUS, ROOT, load_average, machine, questions, run_worker, subprocess_env

SECTIONS = ("review", "cold", "http", "crossover", "scale", "updates", "cmrc-build")

FULL = {
    "review": {"build_reps": 3, "queries": None, "passes": 1},
    "cold": {"reps": 3},
    "http": {"passes": 1, "restarts": 2},
    "crossover": {"sizes": [5_000, 10_000, 20_000, 50_000, 100_000, 200_000], "queries": 200},
    "scale": {"sizes": [10_000, 100_000, 1_000_000], "queries": 200, "text_queries": None,
              "hnsw_max": 100_000, "langchain_max": 1_000_000, "langchain_text_queries": {100_000: 20, 1_000_000: 3}},
    # A change indexes only its document (a new segment); the initial build of the synthetic
    # corpus is what takes long (minutes at 100k chunks: jieba over every sentence).
    "updates": {"sizes": [10_000, 100_000], "change_max": 100_000},
    # The CMRC trial split's 256 paragraphs: our build, LangChain's 250/50 recipe, the model's limit.
    "cmrc-build": {"sweep_every": 8},
    "timeout_s": 1800,
}
SMOKE = {
    "review": {"build_reps": 1, "queries": 3, "passes": 1, "corpus_lines": 20},
    "cold": {"reps": 1},
    "http": {"passes": 1, "restarts": 0},
    "crossover": {"sizes": [1_000, 2_000], "queries": 20},
    "scale": {"sizes": [2_000], "queries": 20, "text_queries": 5, "hnsw_max": 2_000, "langchain_max": 2_000,
              "langchain_text_queries": {}},
    "updates": {"sizes": [500], "change_max": 500},
    "cmrc-build": {"paragraphs": 4, "sweep_every": 4},
    "timeout_s": 600,
}
QUESTION = "为什么Bang和Chung的研究结论不一致？"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(out: Path, smoke: bool, only: list[str] | None = None) -> dict:
    """Run the selected sections (all by default); merge into ``out``'s JSON; write the report."""
    cfg = SMOKE if smoke else FULL
    sections = only or list(SECTIONS)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))} (choose from {', '.join(SECTIONS)})")
    json_path = out.with_suffix(".json")
    results = json.loads(json_path.read_text()) if only and json_path.exists() else {}
    started = time.perf_counter()
    command = "python -m bench run" + (" --smoke" if smoke else "") + f" --out {out}" + (f" --only {','.join(only)}" if only else "")
    config = {**results.get("meta", {}).get("config", {}), **{k: cfg[k] for k in sections}}
    results["meta"] = {"machine": machine(), "smoke": smoke, "command": command,
                       "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "load_before": load_average(),
                       "sections_run": sections, "config": config}
    results.setdefault("section_meta", {})
    results.setdefault("durations_s", {})
    results.pop("errors", None)
    timeout = cfg["timeout_s"]
    global _PARTIAL
    out.parent.mkdir(parents=True, exist_ok=True)
    _PARTIAL = json_path.with_name(json_path.stem + ".partial.json")  # progress, in case the run is cut short

    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        index_dir = Path(tmp) / "index"
        corpus = _corpus(Path(tmp), cfg["review"].get("corpus_lines"))
        if "review" in sections:
            args = {k: v for k, v in cfg["review"].items() if k != "corpus_lines"}
            results["review"] = _section("review", results, lambda: run_worker(
                "review", {**args, "index_dir": str(index_dir), "corpus_dir": str(corpus)}, timeout, log))
        elif {"cold", "http"} & set(sections):
            _build_index(index_dir, corpus)
        if "cold" in sections:
            results["cold"] = _section("cold", results, lambda: {
                "cli": server.cli_cold_start(index_dir, QUESTION, cfg["cold"]["reps"], corpus),
                "stages": run_worker("coldstart", {"index_dir": str(index_dir), "corpus_dir": str(corpus),
                                                   "question": QUESTION}, timeout, log),
            })
        if "http" in sections:
            qs = questions(cfg["review"]["queries"])
            results["http"] = _section("http", results, lambda: server.http(index_dir, qs, corpus_dir=corpus, **cfg["http"]))
    if "crossover" in sections:
        results["crossover"] = _section("crossover", results, lambda: run_worker("crossover", cfg["crossover"], timeout, log))
    if "scale" in sections:
        with tempfile.TemporaryDirectory(prefix="bench-vectors-") as cache:
            results["scale"] = _section("scale", results, lambda: _scale(cfg["scale"], timeout, cache))
    if "updates" in sections:
        results["updates"] = _section("updates", results, lambda: [
            run_worker("updates", {"n": n, "add": n <= cfg["updates"]["change_max"]}, timeout, log)
            for n in cfg["updates"]["sizes"]])

    if "cmrc-build" in sections:
        results["cmrc-build"] = _section("cmrc-build", results, lambda: run_worker("cmrc_build", cfg["cmrc-build"], timeout, log))

    results["meta"]["load_after"] = load_average()
    results["meta"]["total_s"] = round(time.perf_counter() - started, 1)
    json_path.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    _PARTIAL.unlink(missing_ok=True)
    report.write(results, out)
    log(f"done in {results['meta']['total_s']:.0f} s: {out}, {json_path}")
    if results.get("errors"):
        raise SystemExit(f"sections failed: {', '.join(results['errors'])} (see {json_path})")
    return results


def _section(name: str, results: dict, fn):
    """Run one section; a failure is recorded (and fails the run at the end) without losing the others."""
    log(f"section {name} ...")
    t = time.perf_counter()
    results["section_meta"][name] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": load_average()}
    try:
        value = fn()
    except Exception as exc:  # noqa: BLE001 - any failure: keep the other sections' numbers
        results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[-3000:]
        log(f"section {name} FAILED: {str(exc)[-1000:]}")
        value = results.get(name)  # an earlier run's numbers, if merging
    results[name] = value
    results["durations_s"][name] = round(time.perf_counter() - t, 1)
    results["section_meta"][name]["load_after"] = load_average()
    log(f"section {name} done in {results['durations_s'][name]:.0f} s")
    if _PARTIAL:
        _PARTIAL.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return value


_PARTIAL: Path | None = None


def _corpus(tmp: Path, lines: int | None) -> Path:
    """The review as corpus; in smoke runs, a copy of its first ``lines`` lines (a build in seconds)."""
    if not lines:
        return CORPUS
    folder = tmp / "corpus"
    folder.mkdir()
    for path in sorted(CORPUS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        (folder / path.name).write_text("".join(text.splitlines(keepends=True)[:lines]), encoding="utf-8")
    return folder


def _build_index(index_dir: Path, corpus: Path) -> None:
    """`rag index` into a private folder, for sections that need a built index without the review section."""
    env = subprocess_env(RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(index_dir))
    subprocess.run([*server.rag_command(), "index"], env=env, check=True, capture_output=True, cwd=ROOT, timeout=900)


def _scale(cfg: dict, timeout: float, cache: str) -> list[dict]:
    rows = []
    for n in cfg["sizes"]:
        log(f"scale n={n:,}")
        common = {"n": n, "queries": cfg["queries"], "cache": cache}
        row = {"n": n, "ours": run_worker("scale_ours", {**common, "text_queries": cfg["text_queries"]}, timeout, log)}
        flat_queries = 50 if n >= 1_000_000 else None  # exact search at 1M: 0.2 s a query, recall 1 anyway
        row["ann"] = [run_worker("ann", {**common, "kind": kind, "flat_queries": flat_queries}, timeout, log)
                      for kind in ("flat", "ivf", "hnsw") if kind != "hnsw" or n <= cfg["hnsw_max"]]
        if n <= cfg["langchain_max"]:
            tq = cfg["langchain_text_queries"].get(n, cfg["text_queries"])
            try:  # rank_bm25 holds a dict per chunk: at 1M it may not fit; say so rather than lose the run
                row["langchain"] = run_worker("scale_langchain", {**common, "text_queries": tq,
                                                                  "warmup": 1 if tq and tq < 5 else 2}, timeout, log)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                row["langchain_error"] = str(exc)[-1500:]
                log(f"  LangChain at n={n:,} failed: {str(exc)[-300:]}")
        for f in Path(cache).glob(f"vectors-{n}-*"):
            f.unlink()  # 1.5 GB at 1M: not kept past its size
        rows.append(row)
    return rows


def reproduce_command(out: Path, smoke: bool) -> str:
    return shlex.join([".venv/bin/python", "-m", "bench", "run", *(["--smoke"] if smoke else []), "--out", str(out)])
