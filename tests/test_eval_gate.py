"""The quality gate: the real pipeline against the stored baseline, and the gate's own behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rag.quality import gate
from rag.quality.evaluation import load_gold, run, summarize
from rag.pipeline import Pipeline
from tests.conftest import CORPUS, ROOT

pytestmark = pytest.mark.slow
GOLD = ROOT / "eval" / "gold.jsonl"
BASELINE = ROOT / "eval" / "baseline.json"


@pytest.fixture(scope="module")
def gold_run(real_pipeline):
    items = load_gold(GOLD)
    results = run(real_pipeline, items)
    return items, results, summarize(results)


def _strip(results):
    return [{k: v for k, v in r.items() if k != "timings_ms"} for r in results]


def test_gate_current_pipeline_passes_the_stored_baseline(real_pipeline, gold_run):
    _, results, summary = gold_run
    verdict = gate.compare(gate.load_baseline(BASELINE), summary, results, gate.fingerprint(real_pipeline.settings, real_pipeline.index, GOLD))
    assert verdict.fingerprint_changes == []
    assert verdict.failures == [], verdict.worse


def test_gate_run_is_deterministic(real_pipeline, gold_run):
    items, results, _ = gold_run
    again = run(real_pipeline, items[:20])
    assert _strip(again) == _strip(results[:20])


def test_gate_fails_loudly_on_a_worse_pipeline(real_pipeline, gold_run):
    items, _, _ = gold_run
    worse_settings = real_pipeline.settings.model_copy(update={"top_k": 1, "bm25_weight": 0.0})
    worse = Pipeline(worse_settings, real_pipeline.index, real_pipeline.embedder, real_pipeline.models)
    results = run(worse, items)
    verdict = gate.compare(gate.load_baseline(BASELINE), summarize(results), results, gate.fingerprint(worse_settings, real_pipeline.index, GOLD))
    assert not verdict.passed
    assert any(f.startswith("hit@5 fell") for f in verdict.failures)
    assert verdict.worse and all(":" in line for line in verdict.worse)
    assert any("settings.top_k" in c for c in verdict.fingerprint_changes)


def test_gate_changed_fingerprint_is_not_silently_accepted(real_pipeline, gold_run):
    _, results, summary = gold_run
    fp = gate.fingerprint(real_pipeline.settings, real_pipeline.index, GOLD)
    fp["model_id"] = "some-other-model"
    verdict = gate.compare(gate.load_baseline(BASELINE), summary, results, fp)
    assert not verdict.passed and verdict.failures == []
    assert verdict.fingerprint_changes == [f"model_id: {gate.load_baseline(BASELINE)['fingerprint']['model_id']!r} -> 'some-other-model'"]


def test_cli_eval_check_exits_nonzero_on_regression(real_pipeline, tmp_path):
    baseline = gate.load_baseline(BASELINE)
    baseline["summary"]["overall"]["hit@5"] = 1.0  # a baseline the pipeline cannot meet
    doctored = tmp_path / "baseline.json"
    doctored.write_text(json.dumps(baseline, ensure_ascii=False), encoding="utf-8")
    env = os.environ | {"RAG_CORPUS_DIR": str(CORPUS), "RAG_INDEX_DIR": str(real_pipeline.settings.index_dir)}
    cmd = [sys.executable, "-m", "rag.cli", "eval", "--check", "--gold", str(GOLD), "--reports", str(tmp_path / "r")]
    failed = subprocess.run(cmd + ["--baseline", str(doctored)], capture_output=True, text=True, env=env, timeout=600)
    assert failed.returncode == 3, failed.stderr
    assert "REGRESSION: hit@5 fell" in failed.stderr
    assert {p.name for p in (tmp_path / "r").iterdir()} == {"report.json", "report.md", "report.html"}
    passed = subprocess.run(cmd + ["--baseline", str(BASELINE)], capture_output=True, text=True, env=env, timeout=600)
    assert passed.returncode == 0, passed.stderr
    assert "check passed" in passed.stderr


def test_reports_written_with_a_chart_per_kind(gold_run, tmp_path):
    from rag.quality.reports import write_reports

    _, results, summary = gold_run
    paths = write_reports(tmp_path, summary, results, {"model_id": "x"}, {"BM25 only": summary["overall"]})
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 1 + len(summary["by_kind"]) + 1  # overall, each kind, one ablation
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| overall |" in md and "## Ablations" in md and "## Latency (ms)" in md
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["summary"] == summary
    assert [p.name for p in paths] == ["report.json", "report.md", "report.html"]
