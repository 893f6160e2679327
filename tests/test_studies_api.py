"""/studies, /studies/{id}, /ask with a study question, and `rag studies`, over the review and the
second test document with the hash embedder (no model load): status codes, filters, exports."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from rag.answer.abstention import AbstentionRule
from rag.answer.answer_models import load_answer_models
from rag.cli import app as cli_app
from rag.config import Settings
from rag.indexing import index as index_mod
from rag.indexing.embedder import HashEmbedder
from rag.pipeline import Pipeline
from rag.service import Assistant

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("studies")
    shutil.copy(ROOT / "corpus" / "msc-neuro-review.zh.txt", root / "msc-neuro-review.zh.txt")
    shutil.copy(DATA / "studies-other.zh.txt", root / "studies-other.zh.txt")
    return root


@pytest.fixture(scope="module")
def client(corpus, tmp_path_factory) -> TestClient:
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("index"), embedding_model="hash-test")
    built = index_mod.build(settings, HashEmbedder(), progress=False)
    models = replace(load_answer_models(), rule=AbstentionRule({}, bias=5.0))
    return TestClient(create_app(assistant=Assistant(Pipeline(settings, built, HashEmbedder(), models))))


def test_studies_list_both_documents(client):
    got = client.get("/studies")
    assert got.status_code == 200
    assert [s["id"] for s in got.json()][:3] == ["bang-2005", "levy-2019", "chung-2021"]
    assert len(got.json()) == 14 and {s["doc_id"] for s in got.json()} == {"msc-neuro-review.zh.txt", "studies-other.zh.txt"}


@pytest.mark.parametrize("query, ids", [
    ({"disease": "帕金森"}, ["wang-2018"]),
    ({"design": "randomised", "year": 2021}, ["chung-2021"]),
    ({"design": "III期"}, ["trial-2022"]),
    ({"year": 1990}, []),
])
def test_studies_filters(client, query, ids):
    assert [s["id"] for s in client.get("/studies", params=query).json()] == ids


def test_studies_one_and_unknown(client):
    macedo = client.get("/studies/macedo-2024").json()
    assert macedo["patients"]["text"] == "6例" and macedo["author"] == "Macêdo"
    missing = client.get("/studies/nobody-1999")
    assert missing.status_code == 404 and missing.json() == {"detail": "no study 'nobody-1999'"}


@pytest.mark.parametrize("query", [{"design": "cheap"}, {"year": "last"}, {"format": "xlsx"}, {"disease": "x" * 101}])
def test_studies_bad_filters_are_422(client, query):
    got = client.get("/studies", params=query)
    assert got.status_code == 422 and "detail" in got.json()


def test_studies_exports(client):
    csv = client.get("/studies", params={"format": "csv", "disease": "阿尔茨海默病"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[1].startswith("kim-2021,2021,Kim等人(2021年) [msc-neuro-review.zh.txt#2480-2492]")
    md = client.get("/studies", params={"format": "markdown", "lang": "en", "year": 2018})
    assert md.text.splitlines()[0].startswith("| id | year | study | disease |")
    assert "| wang-2018 | 2018 | Wang等(2018年) [studies-other.zh.txt#" in md.text


def test_ask_contrast_carries_a_table(client):
    got = client.post("/ask", json={"question": "为什么Bang和Chung的研究结论不一致？"}).json()
    assert got["answer"].startswith("文档给出的原因：")
    assert got["table"]["studies"] == ["bang-2005", "chung-2021"]
    plain = client.post("/ask", json={"question": "Bang等人2005年纳入了多少例患者？"}).json()
    assert "table" not in plain


def test_cli_studies(corpus, monkeypatch):
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus))
    runner = CliRunner()
    listed = runner.invoke(cli_app, ["studies", "--disease", "阿尔茨海默病"])
    assert listed.exit_code == 0 and listed.output.splitlines()[0].startswith("kim-2021  Kim等人(2021年)")
    one = runner.invoke(cli_app, ["studies", "tanaka-2020", "--format", "json"])
    assert one.exit_code == 0 and '"text": "慢性创伤性脑损伤"' in one.output
    bad = runner.invoke(cli_app, ["studies", "--format", "xlsx"])
    assert bad.exit_code == 2 and "unknown format" in bad.output
