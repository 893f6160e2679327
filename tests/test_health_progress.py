"""The server listens while it opens its assistant: /health says how far (building, loading, error),
routes that need the index answer 503 with Retry-After until it is ready, and a rebuild after an
upload shows its progress while the old index keeps serving.

A tiny corpus and the hash embedder (no model load); the slow step is a piece of tracked work
that stops halfway until the test lets it go on. The real server runs on loopback in a thread.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from api.app import create_app
from rag import progress
from rag.answer.answer_models import load_answer_models
from rag.config import Settings
from rag.errors import ModelError
from rag.indexing import index as index_mod
from rag.indexing import lifecycle
from rag.indexing.embedder import HashEmbedder
from rag.pipeline import Pipeline
from rag.service import Assistant
from tests.servers import ServerThread

WAIT_S = 20
DOC = "间充质干细胞治疗中风的临床案例\nLevy等人报道了36例慢性卒中患者接受了同种异体MSCs输注。\n结果显示该疗法安全。\n"
QUESTION = {"question": "Levy等人的试验纳入了多少例患者？"}
# Every route that needs the index, as (method, path, request arguments).
INDEX_ROUTES = [
    ("POST", "/ask", {"json": QUESTION}),
    ("POST", "/ask/stream", {"json": QUESTION}),
    ("POST", "/search", {"json": {"claim": "36例慢性卒中患者"}}),
    ("POST", "/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": QUESTION["question"]}]}}),
    ("GET", "/documents", {}),
    ("POST", "/documents", {"files": {"file": ("new.txt", "新的文档。".encode(), "text/plain")}}),
    ("DELETE", "/documents/review.txt", {}),
]


class Gate:
    """Ten items of tracked work that stop at the fifth until the test lets them go on."""

    def __init__(self) -> None:
        self.halfway = threading.Event()
        self.go = threading.Event()

    def work(self, what: str) -> None:
        for n in progress.tracked(range(10), 10, what, enabled=False):
            if n == 4:
                self.halfway.set()
                assert self.go.wait(WAIT_S)


class GatedEmbedder(HashEmbedder):
    """The hash embedder; passages wait at a gate first, when one is set (to catch a rebuild midway)."""

    gate: Gate | None = None

    def encode(self, texts: list[str], is_query: bool, progress: bool = False):
        if self.gate is not None and not is_query:
            self.gate.work(f"embedding {len(texts)} texts (batches)")
        return super().encode(texts, is_query, progress)


@pytest.fixture(scope="module")
def models():
    return load_answer_models()


@pytest.fixture()
def settings(tmp_path) -> Settings:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "review.txt").write_text(DOC, encoding="utf-8")
    return Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                    embedding_model="hash-test")


def open_tiny(settings: Settings, models) -> Assistant:
    """What Assistant.open does, with the hash embedder: build (or load) the index and assemble."""
    embedder = GatedEmbedder()
    return Assistant(Pipeline(settings, lifecycle.ensure_index(settings, embedder, progress=False), embedder, models))


def gated_opener(gate: Gate, models, what: str = "embedding 10 texts (batches)"):
    def opener(settings: Settings) -> Assistant:
        gate.work(what)
        return open_tiny(settings, models)

    return opener


def health_until(client: httpx.Client, wanted: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        health = client.get("/health").json()
        if health["status"] == wanted:
            return health
        time.sleep(0.02)
    raise AssertionError(f"/health never said {wanted!r}: {health}")


def test_health_reports_the_build_and_index_routes_wait_for_it(settings, models):
    gate = Gate()
    with ServerThread(create_app(settings, opener=gated_opener(gate, models))) as s, \
            httpx.Client(base_url=s.base_url, timeout=WAIT_S) as c:
        try:
            assert gate.halfway.wait(WAIT_S)
            health = c.get("/health")
            assert health.status_code == 200
            body = health.json()
            assert body["status"] == "building"  # no index yet: opening builds one
            assert body["documents"] is None and body["chunks"] is None and body["model_id"] is None
            assert body["auth_required"] is False and body["error"] is None
            now = body["progress"]
            assert now["stage"] == "embedding 10 texts (batches)" and now["done"] == 4 and now["total"] == 10
            assert now["rate_per_s"] > 0 and now["eta_s"] > 0
            for method, path, args in INDEX_ROUTES:
                r = c.request(method, path, **args)
                assert r.status_code == 503, (path, r.text)
                assert r.headers["retry-after"] == "5"
                assert r.json()["detail"].startswith("the index is still being built: 40% (embedding 10 texts (batches): 4/10")
            assert c.get("/v1/models").status_code == 200 and c.get("/").status_code == 200  # need no index
        finally:
            gate.go.set()
        ready = health_until(c, "ok")
        assert ready["documents"] == 1 and ready["chunks"] >= 1 and ready["model_id"] == "hash-test"
        assert ready["progress"] is None
        assert c.post("/ask", json=QUESTION).status_code == 200
        assert [d["id"] for d in c.get("/documents").json()] == ["review.txt"]


def test_a_fresh_index_is_loading_not_building(settings, models):
    lifecycle.publish(index_mod.build(settings, HashEmbedder(), progress=False), settings.index_dir)
    gate = Gate()
    opener = gated_opener(gate, models, what="loading the embedding model")
    with ServerThread(create_app(settings, opener=opener)) as s, httpx.Client(base_url=s.base_url, timeout=WAIT_S) as c:
        try:
            assert gate.halfway.wait(WAIT_S)
            assert c.get("/health").json()["status"] == "loading"
            r = c.post("/search", json={"claim": "卒中"})
            assert r.status_code == 503 and r.json()["detail"].startswith("the model and index are still loading: 40%")
        finally:
            gate.go.set()
        health_until(c, "ok")


def test_health_stays_open_while_building_when_a_key_is_set(settings, models):
    gate = Gate()
    keyed = settings.model_copy(update={"api_key": "k-123"})
    with ServerThread(create_app(keyed, opener=gated_opener(gate, models))) as s, \
            httpx.Client(base_url=s.base_url, timeout=WAIT_S) as c:
        try:
            assert gate.halfway.wait(WAIT_S)
            assert c.get("/health").json()["auth_required"] is True
            assert c.post("/ask", json=QUESTION).status_code == 401  # the key first, then readiness
            assert c.post("/ask", json=QUESTION, headers={"Authorization": "Bearer k-123"}).status_code == 503
        finally:
            gate.go.set()


def failing_model(settings: Settings) -> Assistant:
    raise ModelError("cannot load the ONNX embedding model in /nowhere: file missing")


def crashing(settings: Settings) -> Assistant:
    raise RuntimeError("boom\nsecond line")


@pytest.mark.parametrize("opener, corpus, message", [
    (failing_model, "review.txt", "cannot load the ONNX embedding model in /nowhere: file missing"),
    (crashing, "review.txt", "unexpected RuntimeError: boom second line"),
    (failing_model, None, "corpus folder not found"),  # a corpus gone before opening reached the model
])
def test_a_failed_opening_is_an_error_on_health_and_503_elsewhere(settings, opener, corpus, message):
    if corpus is None:
        settings = settings.model_copy(update={"corpus_dir": settings.corpus_dir.parent / "missing"})
    with ServerThread(create_app(settings, opener=opener)) as s, httpx.Client(base_url=s.base_url, timeout=WAIT_S) as c:
        health = health_until(c, "error")
        assert message in health["error"] and "\n" not in health["error"]
        r = c.post("/ask", json=QUESTION)
        assert r.status_code == 503 and "retry-after" not in r.headers
        assert r.json()["detail"].startswith("the assistant could not start: ") and message in r.json()["detail"]


def test_an_upload_rebuild_shows_progress_while_the_old_index_serves(settings, models):
    assistant = open_tiny(settings, models)
    gate = Gate()
    with ServerThread(create_app(assistant=assistant)) as s, httpx.Client(base_url=s.base_url, timeout=WAIT_S) as c:
        assert c.get("/health").json()["progress"] is None
        assistant.pipeline.embedder.gate = gate
        upload = threading.Thread(target=lambda: c.post("/documents", files={"file": ("new.txt", "新的文档讲述剂量。".encode(), "text/plain")}))
        upload.start()
        try:
            assert gate.halfway.wait(WAIT_S)
            health = c.get("/health").json()
            assert health["status"] == "ok" and health["documents"] == 1  # the old index still serves
            assert health["progress"]["stage"].startswith("embedding ") and health["progress"]["done"] == 4
            assert c.post("/ask", json=QUESTION).status_code == 200
        finally:
            gate.go.set()
            upload.join(WAIT_S)
        after = c.get("/health").json()
        assert after["documents"] == 2 and after["progress"] is None


def test_a_given_assistant_serves_at_once_without_a_lifespan(settings, models):
    """Tests (and embedders of the app) pass an open assistant: no background thread, no 503."""
    from fastapi.testclient import TestClient

    client = TestClient(create_app(assistant=open_tiny(settings, models)))  # not entered: the lifespan never runs
    assert client.get("/health").json()["status"] == "ok"
    assert client.post("/search", json={"claim": "卒中"}).status_code == 200
