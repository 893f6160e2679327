"""The real `rag` command on the real review: the acceptance questions, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CORPUS, private_corpus

pytestmark = pytest.mark.slow


def run_rag(args, index_dir, **env):
    full_env = os.environ | {"RAG_CORPUS_DIR": str(CORPUS), "RAG_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1"} | env
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=full_env, timeout=600
    )


@pytest.fixture(scope="module")
def built_index(real_pipeline):
    """The session's index folder, already built by the real pipeline."""
    return real_pipeline.settings.index_dir


def test_cli_ask_json_bang_chung_cites_the_reason(built_index):
    result = run_rag(["ask", "为什么Bang和Chung的研究结论不一致？", "--json"], built_index)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["answerable"] is True
    assert set(answer["timings_ms"]) == {"retrieve", "answer"}
    text = (CORPUS / "msc-neuro-review.zh.txt").read_text(encoding="utf-8")
    for c in answer["citations"]:
        assert text[c["start"]:c["end"]] == c["text"]
        assert f"[{c['n']}]" in answer["answer"]
    assert any(all(w in c["text"] for w in ("病程", "剂量", "培养方案", "评估标准")) for c in answer["citations"])


def test_cli_ask_json_als_is_not_answerable(built_index):
    result = run_rag(["ask", "MSC治疗肌萎缩侧索硬化的临床效果如何？", "--json"], built_index)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["answerable"] is False and answer["citations"] == []


def test_cli_search_json_gives_ranked_passages(built_index):
    result = run_rag(["search", "自体脂肪来源MSCs鞘内输注后7例患者AIS分级改善", "--json", "--top-k", "3"], built_index)
    assert result.returncode == 0, result.stderr
    passages = json.loads(result.stdout)
    assert len(passages) == 3 and passages[0]["rank"] == 1
    assert "7例患者" in passages[0]["text"]


def test_cli_index_reports_up_to_date_then_rebuilds_when_forced(built_index):
    result = run_rag(["index"], built_index)
    assert result.returncode == 0 and "up to date" in result.stderr
    # a changed setting makes the index stale: rebuilt, not served
    result = run_rag(["index"], built_index, RAG_CHUNK_MAX_CHARS="250")
    assert result.returncode == 0, result.stderr
    assert "setting chunk_max_chars changed" in result.stderr and "indexed 1 documents" in result.stderr


def test_cli_generation_failure_is_one_line(built_index):
    result = run_rag(
        ["ask", "Bang等人2005年的研究输注了多少细胞？"], built_index,
        RAG_LLM_BASE_URL="http://127.0.0.1:9/v1", RAG_LLM_MODEL="m", RAG_LLM_TIMEOUT_S="2",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: the chat endpoint failed")
    assert "Traceback" not in result.stderr


def test_cli_ask_and_search_through_a_running_server(real_pipeline, tmp_path):
    """`--server` answers as the local pipeline does, without loading the model; the key is sent."""
    from api.app import create_app
    from rag.pipeline import Pipeline
    from rag.service import Assistant
    from tests.servers import ServerThread

    settings = real_pipeline.settings.model_copy(update={"api_key": "cli-key"})
    pipeline = Pipeline(settings, real_pipeline.index, real_pipeline.embedder, real_pipeline.models)
    question = "为什么Bang和Chung的研究结论不一致？"
    # An index folder with nothing in it: only the server can answer.
    empty = tmp_path / "no-index"
    with ServerThread(create_app(assistant=Assistant(pipeline))) as server:
        remote = run_rag(["ask", question, "--json", "--server", server.base_url], empty, RAG_API_KEY="cli-key")
        assert remote.returncode == 0, remote.stderr
        assert json.loads(remote.stdout)["answer"] == real_pipeline.ask(question).answer
        by_env = run_rag(["search", "7例患者AIS分级改善", "--json", "--top-k", "2"], empty,
                         RAG_API_KEY="cli-key", RAG_SERVER_URL=server.base_url)
        assert by_env.returncode == 0 and len(json.loads(by_env.stdout)) == 2
        wrong_key = run_rag(["ask", question, "--server", server.base_url], empty, RAG_API_KEY="nope")
        assert wrong_key.returncode == 1 and "answered 401: missing or wrong API key" in wrong_key.stderr
    assert not empty.exists()  # nothing was built locally
    down = run_rag(["ask", question, "--server", server.base_url], empty)
    assert down.returncode == 1 and down.stderr.startswith("error: cannot reach the server at http://127.0.0.1:")
    assert "Traceback" not in down.stderr
    bad = run_rag(["ask", question, "--server", "127.0.0.1:8000"], empty)
    assert bad.returncode == 1 and "must start with http://" in bad.stderr


def test_cli_ask_scoped_to_documents(built_index):
    scoped = run_rag(["ask", "Kim等人纳入了几例患者？", "--json", "--doc", "msc-neuro-review.zh.txt"], built_index)
    assert scoped.returncode == 0 and json.loads(scoped.stdout)["answerable"] is True
    nothing = run_rag(["ask", "Kim等人纳入了几例患者？", "--json", "--doc", "no-such.pdf"], built_index)
    assert nothing.returncode == 0
    assert json.loads(nothing.stdout)["answer"] == "没有符合所选范围的文档，请检查所选的文档。"


def test_cli_add_indexes_documents_and_refuses_bad_ones(real_pipeline, tmp_path):
    from tests import docfiles

    settings, _ = private_corpus(real_pipeline, tmp_path / "lib")
    env = {"RAG_CORPUS_DIR": str(settings.corpus_dir)}
    pdf = tmp_path / "als.pdf"
    pdf.write_bytes(docfiles.pdf_system_font([["渐冻症干细胞试验", "该研究共纳入了十二例肌萎缩侧索硬化患者，随访期间未见严重不良事件。"]]))
    added = run_rag(["add", str(pdf), "--metadata", '{"year": 2024, "tags": ["als"]}'], settings.index_dir, **env)
    assert added.returncode == 0, added.stderr
    assert "added als.pdf:" in added.stderr and "1 pages" in added.stderr
    answer = json.loads(run_rag(["ask", "肌萎缩侧索硬化的研究纳入了多少例患者？", "--json", "--doc", "als.pdf"],
                                settings.index_dir, **env).stdout)
    assert answer["citations"][0]["page"] == 1 and answer["citations"][0]["references"]["apa"].endswith("(2024).")
    tagged = json.loads(run_rag(["search", "干细胞治疗的安全性", "--json", "--tag", "als"], settings.index_dir, **env).stdout)
    assert tagged and {p["doc_id"] for p in tagged} == {"als.pdf"}
    older = json.loads(run_rag(["ask", "Kim等人纳入了几例患者？", "--json", "--year-to", "2000"], settings.index_dir, **env).stdout)
    assert older["answerable"] is False  # no document is that old
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(docfiles.pdf_without_text())
    refused = run_rag(["add", str(scan)], settings.index_dir, **env)
    assert refused.returncode == 1 and "has no text layer" in refused.stderr and "Traceback" not in refused.stderr
    assert not (settings.corpus_dir / "scan.pdf").exists()
    bad = run_rag(["add", str(pdf), "--metadata", '{"year": "soon"}'], settings.index_dir, **env)
    assert bad.returncode == 2 and "--metadata" in bad.stderr and "year" in bad.stderr
