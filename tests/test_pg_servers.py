"""The Postgres store end to end, on a real Postgres (tests/pg.py) with the real model: the gold
set meets the embedded store's gate; two `rag serve` processes on one database see each other's
uploads and deletes within a second, serve each other's uploaded originals byte for byte and each
other's bibliographic fields in their reference strings, and keep nothing in their own folders;
two servers started on one empty database build it once; the database going away turns /health
to an error and requests to 503s, and both recover when it returns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from rag.indexing.pg import store
from rag.pipeline import Pipeline
from rag.quality import gate
from rag.quality.evaluation import load_gold, run, summarize
from tests.conftest import CORPUS, ROOT
from tests.docfiles import pdf_system_font
from tests.pg import new_database, remove_server, start_server
from tests.servers import free_port, wait_until_ready

pytestmark = pytest.mark.slow
GOLD = ROOT / "eval" / "gold.jsonl"
BASELINE = ROOT / "eval" / "baseline.json"
QUESTION = "为什么Bang和Chung的研究结论不一致？"
NEW_DOC = ("帕金森病的细胞治疗\n一项开放标签研究纳入了12例帕金森病患者,接受了胎儿中脑组织移植,"
           "术后随访两年,运动评分平均改善了30%。\n")
NEW_QUESTION = "帕金森病的开放标签研究纳入了多少例患者？"


@pytest.fixture(scope="module")
def database(tmp_path_factory, real_pipeline):
    """A Postgres server of this module's own (a test stops and restarts it), with the corpus loaded."""
    server = start_server()
    url = new_database(server)
    settings = real_pipeline.settings.model_copy(update={"store": url})
    store.full_build(settings, real_pipeline.embedder, progress=False)
    yield server, url, settings
    remove_server(server)


def _start_servers(url: str, tmp_path_factory, names=("a", "b"), with_folder: bool = True):
    """`rag serve` processes on ``url``, each with a corpus folder of its own (the review only, or
    none at all); returns their processes, base URLs and corpus folders."""
    procs, bases, corpora = [], [], []
    for name in names:
        corpus = tmp_path_factory.mktemp(f"corpus-{name}")
        if with_folder:
            shutil.copy(CORPUS / "msc-neuro-review.zh.txt", corpus)
        else:
            corpus = corpus / "absent"
        port = free_port()
        env = os.environ | {"RAG_STORE": url, "RAG_CORPUS_DIR": str(corpus), "HF_HUB_OFFLINE": "1",
                            "RAG_INDEX_DIR": str(tmp_path_factory.mktemp(f"index-{name}")),
                            "RAG_FEEDBACK_FILE": str(_feedback_file(tmp_path_factory, name))}
        procs.append(subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], env=env,
                                      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        bases.append(f"http://127.0.0.1:{port}")
        corpora.append(corpus)
    return procs, bases, corpora


def _feedback_file(tmp_path_factory, name: str):
    """Where server ``name`` would keep ratings if it kept them itself."""
    return tmp_path_factory.getbasetemp() / f"feedback-{name}.jsonl"


def _stop(procs) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def servers(database, tmp_path_factory):
    """Two `rag serve` processes on the database: (base URLs, corpus folders)."""
    _, url, _ = database
    procs, bases, corpora = _start_servers(url, tmp_path_factory)
    try:
        for base, proc in zip(bases, procs):
            wait_until_ready(base, proc)
        yield bases, corpora
    finally:
        _stop(procs)


@pytest.fixture(scope="module")
def two_servers(servers):
    """The two servers' base URLs."""
    return servers[0]


def _until(check, timeout_s: float, step_s: float = 0.05) -> float:
    """Seconds until ``check()`` holds; fails after ``timeout_s``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"not within {timeout_s} s")
        time.sleep(step_s)
    return time.monotonic() - start


def _listed(base: str) -> set[str]:
    return {d["id"] for d in httpx.get(base + "/documents", timeout=10).json()}


def test_pg_gold_set_meets_the_embedded_gate(database, real_pipeline):
    _, url, settings = database
    pipeline = Pipeline(settings, store.load(url), real_pipeline.embedder, real_pipeline.models)
    results = run(pipeline, load_gold(GOLD))
    verdict = gate.compare(gate.load_baseline(BASELINE), summarize(results), results,
                           gate.fingerprint(settings, pipeline.index, GOLD))
    assert verdict.fingerprint_changes == []
    assert verdict.failures == [], verdict.worse


def test_pg_two_servers_see_each_others_changes_within_a_second(two_servers, real_pipeline):
    a, b = two_servers
    want = real_pipeline.ask(QUESTION)
    for base in (a, b):  # the same answer as the embedded store's
        got = httpx.post(base + "/ask", json={"question": QUESTION}, timeout=60).json()
        assert got["answer"] == want.answer
        assert [(c["doc_id"], c["start"], c["end"]) for c in got["citations"]] == [
            (c.doc_id, c.start, c.end) for c in want.citations]

    added = httpx.post(a + "/documents", files={"file": ("parkinson.txt", NEW_DOC.encode(), "text/plain")}, timeout=120)
    assert added.status_code == 201, added.text
    assert _until(lambda: "parkinson.txt" in _listed(b), 1.0) <= 1.0
    cited = httpx.post(b + "/ask", json={"question": NEW_QUESTION}, timeout=60).json()["citations"]
    assert cited and cited[0]["doc_id"] == "parkinson.txt"
    assert "12例" in cited[0]["text"]

    deleted = httpx.delete(b + "/documents/parkinson.txt", timeout=120)  # b never had the file itself
    assert deleted.status_code == 204, deleted.text
    assert _until(lambda: "parkinson.txt" not in _listed(a), 1.0) <= 1.0
    cited = httpx.post(a + "/ask", json={"question": NEW_QUESTION}, timeout=60).json()["citations"]
    assert all(c["doc_id"] != "parkinson.txt" for c in cited)


def test_pg_database_going_away_and_coming_back(two_servers, database):
    server, _, _ = database
    a, b = two_servers
    server.stop()
    try:
        _until(lambda: httpx.get(a + "/health", timeout=5).json()["status"] == "error", 10, 0.2)
        health = httpx.get(a + "/health", timeout=5).json()
        assert "unreachable" in health["error"] or "cannot reach" in health["error"]
        asked = httpx.post(a + "/ask", json={"question": QUESTION}, timeout=30)
        assert asked.status_code == 503 and "Postgres" in asked.json()["detail"]
        upload = httpx.post(b + "/documents", files={"file": ("x.txt", NEW_DOC.encode(), "text/plain")}, timeout=60)
        assert upload.status_code == 503
    finally:
        server.ensure_postgres_running()  # the same data folder and socket: the database returns
    for base in (a, b):
        _until(lambda: httpx.get(base + "/health", timeout=5).json()["status"] == "ok", 15, 0.2)
        assert httpx.post(base + "/ask", json={"question": QUESTION}, timeout=60).status_code == 200
    assert "x.txt" not in _listed(a) | _listed(b)  # the refused upload left nothing behind


def test_pg_servers_share_originals_and_bibliographic_fields(servers, database):
    _, url, _ = database
    (a, b), corpora = servers
    pdf = pdf_system_font([["帕金森病的细胞治疗", "一项开放标签研究纳入了12例帕金森病患者,术后随访两年。"]])
    added = httpx.post(a + "/documents", files={"file": ("cells.pdf", pdf, "application/pdf")}, timeout=120)
    assert added.status_code == 201, added.text
    _until(lambda: "cells.pdf" in _listed(b), 1.0)
    got = httpx.get(b + "/documents/cells.pdf/file", timeout=10)  # b never saw the upload
    assert got.status_code == 200 and got.content == pdf
    assert got.headers["content-type"] == "application/pdf"
    assert 'filename="cells.pdf"' in got.headers["content-disposition"]
    assert not any((corpus / "cells.pdf").exists() for corpus in corpora)  # no server kept it for itself

    title = "间充质干细胞治疗帕金森病的开放标签研究"
    patched = httpx.patch(a + "/documents/cells.pdf", json={"title": title, "authors": ["王明"], "year": 2024},
                          timeout=30)
    assert patched.status_code == 200 and patched.json()["metadata"]["title"] == title

    def b_cites_the_title() -> bool:
        cited = httpx.post(b + "/ask", json={"question": NEW_QUESTION}, timeout=60).json()["citations"]
        return any(c["doc_id"] == "cells.pdf" and title in c["references"]["gbt7714"] for c in cited)

    assert _until(b_cites_the_title, 2.0, 0.1) <= 2.0
    listed = {d["id"]: d for d in httpx.get(b + "/documents", timeout=10).json()}["cells.pdf"]
    assert listed["metadata"]["authors"] == ["王明"] and "2024" in listed["references"]["apa"]
    assert not any((corpus / ".meta").exists() for corpus in corpora)

    bad = httpx.patch(b + "/documents/cells.pdf", json={"year": 99999}, timeout=30)
    assert bad.status_code == 422  # refused before anything is written
    assert {d["id"]: d for d in httpx.get(a + "/documents", timeout=10).json()}["cells.pdf"]["metadata"]["year"] == 2024

    assert httpx.delete(b + "/documents/cells.pdf", timeout=120).status_code == 204
    _until(lambda: "cells.pdf" not in _listed(a), 1.0)
    assert httpx.get(a + "/documents/cells.pdf/file", timeout=10).status_code == 404
    assert httpx.patch(a + "/documents/cells.pdf", json={"year": 2020}, timeout=30).status_code == 404
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM rag_records WHERE doc_id = 'cells.pdf'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM rag_documents WHERE doc_id = 'cells.pdf'").fetchone()[0] == 0


def test_pg_two_servers_on_an_empty_database_build_it_once(tmp_path_factory):
    server = start_server()
    try:
        url = new_database(server)
        procs, bases, _ = _start_servers(url, tmp_path_factory, ("first", "second"))
        try:
            for base, proc in zip(bases, procs):
                wait_until_ready(base, proc, timeout_s=600)
            with psycopg.connect(url) as conn:
                builds = conn.execute("SELECT count(*) FROM rag_changes WHERE doc_id = %s", (store.ALL,)).fetchone()[0]
            assert builds == 1
            for base in bases:
                assert httpx.post(base + "/ask", json={"question": QUESTION}, timeout=60).json()["citations"]
        finally:
            _stop(procs)
    finally:
        remove_server(server)


def test_pg_server_without_a_corpus_folder_serves_the_database(database, tmp_path_factory):
    """A server on a shared store keeps nothing of its own: started with no corpus folder, it
    serves the database's documents."""
    _, url, _ = database
    procs, bases, corpora = _start_servers(url, tmp_path_factory, ("bare",), with_folder=False)
    try:
        wait_until_ready(bases[0], procs[0], timeout_s=300)
        assert not corpora[0].exists()
        assert [d["id"] for d in httpx.get(bases[0] + "/documents", timeout=30).json()] == ["msc-neuro-review.zh.txt"]
        assert httpx.post(bases[0] + "/ask", json={"question": QUESTION}, timeout=60).json()["citations"]
    finally:
        _stop(procs)


def test_pg_servers_keep_readers_ratings_in_the_database(servers, database, tmp_path_factory):
    _, url, _ = database
    (a, b), _ = servers
    for base, rating, question in ((a, "up", QUESTION), (b, "down", NEW_QUESTION)):
        answer = httpx.post(base + "/ask", json={"question": question}, timeout=60).json()
        stored = httpx.post(base + "/feedback", json={"rating": rating, "question": question, "answer": answer["answer"],
                                                     "answerable": answer["answerable"], "citations": answer["citations"]},
                            timeout=30)
        assert stored.status_code == 201, stored.text
    listed = subprocess.run([sys.executable, "-m", "rag.cli", "feedback", "--json"], capture_output=True, text=True,
                            cwd=ROOT, env=os.environ | {"RAG_STORE": url})
    assert listed.returncode == 0, listed.stderr
    assert [(r["rating"], r["question"]) for r in json.loads(listed.stdout)] == [("up", QUESTION), ("down", NEW_QUESTION)]
    assert not any(_feedback_file(tmp_path_factory, name).exists() for name in ("a", "b"))
