"""The benchmark harness runs end to end in its tiny smoke mode (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SECTIONS = [
    "## Targets",
    "## Machine",
    "## Index build (the review, real model)",
    "## Latency (the review as corpus, warm)",
    "## Cold start to the first answer",
    "## Memory of the server",
    "## Side by side with the plain LangChain pipeline",
    "## Scale",
    "### BM25",
    "### FAISS: exact against approximate",
    "### Retrieval end to end at scale",
    "## Which index by corpus size",
    "## Adding and deleting a document",
    "## Indexing the CMRC trial collection",
]


@pytest.mark.slow
def test_bench_smoke_writes_every_section(tmp_path):
    out = tmp_path / "b.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--smoke", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]

    text = out.read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert heading in text, heading
    assert "Smoke run" in text
    results = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert results["meta"]["smoke"] is True
    assert results["http"]["latency"]["/search"]["n"] > 0 and results["http"]["latency"]["/ask"]["n"] > 0
    assert results["review"]["build"]["counts"]["chunks"] > 0
    scale = results["scale"][0]
    assert {a["kind"] for a in scale["ann"]} == {"flat", "ivf", "hnsw"}
    assert scale["ours"]["dense"]["same_results_after_load"] is True
    assert scale["langchain"]["ensemble"]["n"] > 0
    assert results["updates"][0]["add_s"] > 0 and results["updates"][0]["delete_s"] > 0
    cmrc = results["cmrc-build"]
    assert cmrc["ours"]["texts"] > cmrc["langchain"]["chunks"] > 0 and cmrc["ideal"]["full_pass_texts_per_s"] > 0
    if results["meta"]["machine"]["versions"].get("matplotlib", "not installed") != "not installed":
        assert out.with_name("b-scale.png").stat().st_size > 0


def _python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def test_the_memory_guard_kills_a_process_past_its_limit_and_leaves_a_small_one_alone():
    from bench.common import MemoryGuard

    # 300 MB written page by page, then held: past a 0.1 GB limit.
    big = _python("import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)")
    guard = MemoryGuard(0.1)
    guard.procs.append(big)
    try:
        assert big.wait(timeout=20) != 0  # killed, long before its 30 s sleep ends
    finally:
        guard.stop()
        big.kill()
    assert guard.killed and guard.killed_at_mb > 100

    small = _python("import time; time.sleep(1.5)")
    guard = MemoryGuard(1.0)
    guard.procs.append(small)
    try:
        assert small.wait(timeout=20) == 0
    finally:
        guard.stop()
    assert not guard.killed and guard.peak_mb > 0
