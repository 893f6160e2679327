"""Citations in context, readers' feedback and `rag feedback`: the real app on loopback over a
tiny corpus with the hash embedder (no model load)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import httpx
import pytest

from api.app import create_app
from rag.answer.abstention import AbstentionRule
from rag.answer.answer_models import load_answer_models
from rag.answer.context import context_bounds
from rag.config import Settings
from rag.feedback import FeedbackStore, candidate_gold
from rag.indexing import index as index_mod
from rag.indexing.embedder import HashEmbedder
from rag.pipeline import Pipeline
from rag.service import Assistant
from tests.servers import ServerThread

TEXT = ("卒中\n"
        "Bang等人于2005年开展的一项研究纳入了30例急性卒中患者。结果显示该疗法安全。\n"
        "Levy等人(2019年)报道了36例慢性卒中患者接受了同种异体MSCs输注。剂量最高达150万个细胞/公斤体重。\n")


@pytest.fixture()
def server(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "stroke.txt").write_text(TEXT, encoding="utf-8")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                        embedding_model="hash-test", feedback_file=tmp_path / "feedback" / "feedback.jsonl")
    built = index_mod.build(settings, HashEmbedder(), progress=False)
    models = replace(load_answer_models(), rule=AbstentionRule({}, bias=5.0))
    with ServerThread(create_app(assistant=Assistant(Pipeline(settings, built, HashEmbedder(), models)))) as s:
        yield s, settings


def test_context_is_the_paragraph_around_the_quote(server):
    s, _ = server
    start = TEXT.index("剂量最高")
    end = TEXT.index("\n", start)
    body = httpx.get(f"{s.base_url}/documents/stroke.txt/context", params={"start": start, "end": end}).json()
    assert body["text"] == TEXT[body["context_start"]:body["context_end"]]
    # More than the quote: its paragraph and the paragraphs around it, whole lines, no edge whitespace.
    assert body["text"].startswith("卒中\nBang等人") and body["text"].endswith("公斤体重。")
    assert (body["start"], body["end"]) == (start, end)


@pytest.mark.parametrize("doc,params,status", [
    ("stroke.txt", {"start": 5, "end": 5}, 422),
    ("stroke.txt", {"start": 0, "end": 10_000}, 422),
    ("stroke.txt", {"start": -1, "end": 3}, 422),
    ("stroke.txt", {"start": "x", "end": 3}, 422),
    ("missing.txt", {"start": 0, "end": 3}, 404),
])
def test_context_refuses_bad_spans_clearly(server, doc, params, status):
    s, _ = server
    r = httpx.get(f"{s.base_url}/documents/{doc}/context", params=params)
    assert r.status_code == status and r.json()["detail"]


def test_context_is_cut_at_whole_lines_or_sentences():
    lines = "第一段很长。" * 20 + "\n第二段。\n目标句子在这里。\n第四段。\n" + "第五段很长。" * 20
    start = lines.index("目标")
    first, last = context_bounds(lines, start, start + 8, reach=30)
    assert lines[first:last] == "第二段。\n目标句子在这里。\n第四段。"  # whole lines within reach
    long = "甲" * 40 + "。乙乙乙。目标句子在这里。丙丙丙。" + "丁" * 40
    start = long.index("目标")
    first, last = context_bounds(long, start, start + 8, reach=12)
    assert long[first:last] == "乙乙乙。目标句子在这里。丙丙丙。"  # no line ends: whole sentences


def test_feedback_is_stored_listed_and_drafted_as_a_gold_item(server, tmp_path):
    s, settings = server
    answer = httpx.post(f"{s.base_url}/ask", json={"question": "Levy等人纳入了多少例患者？"}).json()
    up = httpx.post(f"{s.base_url}/feedback", json={"rating": "up", "question": answer["question"], "answer": answer["answer"],
                                                   "answerable": answer["answerable"], "citations": answer["citations"]})
    down = httpx.post(f"{s.base_url}/feedback", json={"rating": "down", "question": "Bang纳入几例？", "answer": "…",
                                                     "comment": "引用错了"})
    assert up.status_code == down.status_code == 201
    records = FeedbackStore(settings.feedback_file).all()
    assert [r["rating"] for r in records] == ["up", "down"] and records[1]["comment"] == "引用错了"
    assert records[0]["citations"][0]["text"] == answer["citations"][0]["text"]

    env = {"RAG_FEEDBACK_FILE": str(settings.feedback_file), "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "rag.cli", "feedback"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and "Levy等人纳入了多少例患者？" in listed.stdout and "引用错了" in listed.stdout
    out = tmp_path / "candidates.jsonl"
    drafted = subprocess.run([sys.executable, "-m", "rag.cli", "feedback", up.json()["id"], "--to-gold", str(out)],
                             capture_output=True, text=True, env=env)
    assert drafted.returncode == 0, drafted.stderr
    item = json.loads(out.read_text(encoding="utf-8"))
    assert item == candidate_gold(records[0]) and item["answer"] == answer["answer"] and item["evidence"]
    missing = subprocess.run([sys.executable, "-m", "rag.cli", "feedback", "nope"], capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no feedback with id 'nope'"


@pytest.mark.parametrize("body", [
    {"rating": "meh", "question": "q", "answer": "a"},
    {"rating": "up", "question": "", "answer": "a"},
    {"rating": "up", "question": "q", "answer": "a", "comment": "x" * 2001},
])
def test_feedback_refuses_bad_input(server, body):
    s, settings = server
    r = httpx.post(f"{s.base_url}/feedback", json=body)
    assert r.status_code == 422
    assert not settings.feedback_file.exists()


def test_health_says_how_long_a_question_may_be(server):
    s, _ = server
    assert httpx.get(f"{s.base_url}/health").json()["max_question_chars"] == 500


def test_a_document_deleted_under_an_answer_still_gets_a_reference(tmp_path):
    """An answer from the index before a delete may cite the deleted document: its reference falls
    back to its name instead of failing the request."""
    from rag.answer.references import references
    from rag.ingest.catalogue import Catalogue

    (tmp_path / "gone.txt").write_text("标题\n正文。", encoding="utf-8")
    catalogue = Catalogue(tmp_path)
    assert catalogue.get("gone.txt").title == "标题"
    (tmp_path / "gone.txt").unlink()
    assert references(catalogue.get("gone.txt"), "gone.txt")["gbt7714"] == "gone.txt[Z]."
