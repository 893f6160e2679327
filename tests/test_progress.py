"""Long index work reports progress: plain log lines with rate and time left when stderr is not a
terminal (as under pytest), nothing for short work or when turned off."""

from __future__ import annotations

import logging

from rag import progress
from rag.config import Settings
from rag.indexing import index as index_mod
from rag.indexing.embedder import HashEmbedder


def test_without_a_terminal_it_logs_count_rate_and_time_left(monkeypatch, caplog):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="rag.progress"):
        assert list(progress.tracked(range(100), 100, "splitting")) == list(range(100))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 100 and lines[-1].startswith("splitting: 100/100 (") and "s left)" in lines[-1]


def test_short_or_disabled_work_is_silent(caplog):
    with caplog.at_level(logging.INFO, logger="rag.progress"):
        assert list(progress.tracked(range(10), 10, "few")) == list(range(10))
        assert list(progress.tracked(range(500), 500, "off", enabled=False)) == list(range(500))
    assert caplog.records == []


def test_a_build_reports_each_long_phase(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(progress, "MIN_ITEMS", 1)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n in range(3):
        (corpus / f"d{n}.txt").write_text(f"第{n}节\n研究纳入了{n + 3}例患者,结果显示安全。\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedding_model="hash-test")
    with caplog.at_level(logging.INFO, logger="rag.progress"):
        index_mod.build(settings, HashEmbedder(), progress=True)
    phases = {r.getMessage().split(":")[0] for r in caplog.records}
    assert {"reading and splitting documents", "BM25 terms of chunks", "BM25 terms of sentences"} <= phases
