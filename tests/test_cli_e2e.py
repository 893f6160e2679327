"""The real `rag` command on the real review: the acceptance questions, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CORPUS

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
