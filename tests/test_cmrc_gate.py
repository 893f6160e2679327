"""The CMRC 2018 suite as a regression gate: a fixed sample, the real model and index, the stored baseline."""

from __future__ import annotations

import pytest

from rag.quality import gate
from rag.quality.suites import CMRC_SAMPLE_BASELINE, open_pipeline, run_suite
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
# Every 4th question (250): the sample CI runs; the full run is `rag eval --suite cmrc`.
SAMPLE = 4


@pytest.fixture(scope="module")
def cmrc_run(real_pipeline):
    pipeline = open_pipeline("cmrc", real_pipeline.settings, real_pipeline.embedder, progress=False)
    return pipeline, run_suite("cmrc", pipeline.settings, sample=SAMPLE, pipeline=pipeline)


def test_cmrc_sample_passes_its_stored_baseline(cmrc_run):
    _, run = cmrc_run
    verdict = gate.compare(gate.load_baseline(ROOT / CMRC_SAMPLE_BASELINE), run.summary, run.results,
                           run.fingerprint, gate.CMRC_GATE)
    assert verdict.fingerprint_changes == []
    assert verdict.failures == [], verdict.worse


def test_cmrc_sample_quotes_exactly_and_rarely_declines(cmrc_run):
    _, run = cmrc_run
    overall = run.summary["overall"]
    assert overall["items"] == 250 and overall["bad_citations"] == 0
    assert overall["abstained"] <= 0.03 and overall["doc@1"] >= 0.95


def test_cmrc_gate_fails_loudly_on_a_worse_pipeline(cmrc_run):
    pipeline, run = cmrc_run
    worse = pipeline.__class__(pipeline.settings.model_copy(update={"top_k": 1, "dense_weight": 0.0}),
                               pipeline.index, pipeline.embedder, pipeline.models)
    bad = run_suite("cmrc", worse.settings, sample=SAMPLE * 5, pipeline=worse)
    verdict = gate.compare(gate.load_baseline(ROOT / CMRC_SAMPLE_BASELINE), bad.summary, bad.results,
                           bad.fingerprint, gate.CMRC_GATE)
    assert not verdict.passed and any(f.startswith(("ans@1 fell", "doc@1 fell")) for f in verdict.failures)
    assert any("settings.top_k" in c for c in verdict.fingerprint_changes)
