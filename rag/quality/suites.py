"""The two evaluation suites behind ``rag eval --suite``: the review's gold set and CMRC 2018.

Each suite opens its own pipeline (CMRC's paragraphs are their own corpus and index in the
cache folder), answers every question through the path the API uses, and returns what the
reports and the gate need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.quality import cmrc, evaluation, gate, span_eval
from rag.config import Settings
from rag.indexing.embedder import Embedder
from rag.indexing.lifecycle import ensure_index
from rag.pipeline import Pipeline
from rag.quality.reports import METRICS

REVIEW_GOLD = Path("eval/gold.jsonl")
BASELINES = {"review": Path("eval/baseline.json"), "cmrc": Path("eval/baseline-cmrc.json")}
CMRC_SAMPLE_BASELINE = Path("eval/baseline-cmrc-sample.json")


@dataclass
class SuiteRun:
    """A scored run of one suite."""

    summary: dict
    results: list[dict]
    fingerprint: dict
    metrics: tuple[str, ...]
    title: str
    baseline_path: Path
    gate_spec: gate.GateSpec
    ablations: dict | None = field(default=None)


def open_pipeline(suite: str, settings: Settings, embedder: Embedder | None = None, progress: bool = True) -> Pipeline:
    """The pipeline a suite is answered by; CMRC gets its own corpus and index, built when needed."""
    if suite == "review":
        return Pipeline.open(settings, progress) if embedder is None else _over(settings, embedder, progress)
    suite_settings = cmrc.suite_settings(settings)
    if embedder is None:
        return Pipeline.open(suite_settings, progress)
    return _over(suite_settings, embedder, progress)


def _over(settings: Settings, embedder: Embedder, progress: bool) -> Pipeline:
    from rag.answer.answer_models import load_answer_models

    return Pipeline(settings, ensure_index(settings, embedder, progress), embedder, load_answer_models())


def run_suite(suite: str, settings: Settings, gold: Path | None = None, sample: int | None = None,
              ablate: bool = False, pipeline: Pipeline | None = None) -> SuiteRun:
    """Answer and score every question of ``suite`` (every ``sample``-th for CMRC)."""
    pipeline = pipeline or open_pipeline(suite, settings)
    if suite == "review":
        return _run_review(pipeline, gold or REVIEW_GOLD, ablate)
    return _run_cmrc(pipeline, gold or cmrc.DEFAULT_PATH, sample)


def _run_review(pipeline: Pipeline, gold: Path, ablate: bool) -> SuiteRun:
    items = evaluation.load_gold(gold)
    results = evaluation.run(pipeline, items)
    ablations = None
    if ablate:
        from rag.quality.ablation import run_ablations

        ablations = run_ablations(pipeline, items)
    return SuiteRun(
        evaluation.summarize(results), results, gate.fingerprint(pipeline.settings, pipeline.index, gold),
        METRICS, "Gold-set evaluation: the review", BASELINES["review"], gate.REVIEW_GATE, ablations,
    )


def _run_cmrc(pipeline: Pipeline, path: Path, sample: int | None) -> SuiteRun:
    items = cmrc.load_items(path)
    if sample:
        items = cmrc.sample(items, sample)
    results = span_eval.run(pipeline, items)
    summary = span_eval.summarize(results) | {"latency_ms": evaluation.latency(results)}
    fp = gate.fingerprint(pipeline.settings, pipeline.index, path, sample=sample or 1)
    baseline = CMRC_SAMPLE_BASELINE if sample else BASELINES["cmrc"]
    return SuiteRun(summary, results, fp, span_eval.METRICS, "CMRC 2018 trial split (CC BY-SA 4.0)", baseline, gate.CMRC_GATE)
