"""`rag serve` on a corpus without an index: it listens at once, /health reports the model load and the
build while the question routes answer 503, then it serves. A real process with the real model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from rag.indexing import store
from tests.conftest import REVIEW
from tests.servers import free_port, wait_until_ready

pytestmark = pytest.mark.slow
START_TIMEOUT_S = 120


def _first_health(base: str, proc: subprocess.Popen) -> dict:
    """The first answer /health gives, as soon as the server listens."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return httpx.get(base + "/health", timeout=2).json()
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"rag serve never answered (exit code {proc.poll()})")


def test_serve_answers_health_while_it_builds_the_index(tmp_path):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    shutil.copy(REVIEW, corpus / REVIEW.name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1"}
    with open(tmp_path / "server.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        first = _first_health(base, proc)
        assert first["status"] == "building", first  # no index yet: it says so before building one
        assert store.current_build(index) is None  # answered before the index existed
        early = httpx.post(base + "/ask", json={"question": "Levy等人的试验纳入了多少例患者？"}, timeout=10)
        assert early.status_code == 503 and early.headers["retry-after"] == "5"
        assert early.json()["detail"].startswith("the index is still being built")
        seen = [first] + wait_until_ready(base, proc, START_TIMEOUT_S)
        assert any(h["progress"] for h in seen if h["status"] == "building"), seen
        ready = seen[-1]
        assert ready["status"] == "ok" and ready["documents"] == 1 and ready["chunks"] > 10 and ready["progress"] is None
        assert store.current_build(index) is not None
        answer = httpx.post(base + "/ask", json={"question": "Levy等人的试验纳入了多少例患者？"}, timeout=60)
        assert answer.status_code == 200 and answer.json()["citations"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    server_log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in server_log and '"event": "ready"' in server_log
