"""Long index work reports progress: plain log lines with rate and time left when stderr is not a
terminal (as under pytest), nothing for short work or when turned off; and, printed or not, on the
board a server reads for /health."""

from __future__ import annotations

import logging
import threading
import time

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


# ---------------------------------------------------------------- the board /health reads


def test_tracked_work_is_on_the_board_even_with_output_off():
    seen = []
    for n in progress.tracked(range(10), 10, "embedding 10 texts (batches)", enabled=False):
        seen.append(progress.current())
        time.sleep(0.001)  # some time passes, so there is a rate
    first, last = seen[0], seen[-1]
    assert first.stage == "embedding 10 texts (batches)" and first.done == 0 and first.total == 10
    assert first.rate_per_s is None and first.eta_s is None  # nothing done yet: no rate to speak of
    assert last.done == 9 and last.rate_per_s > 0 and last.eta_s > 0 and last.percent == 90
    assert progress.current() is None  # cleared when done


def test_the_board_shows_the_innermost_step_then_the_stage_around_it():
    with progress.stage("building the index"):
        assert progress.current().stage == "building the index" and progress.current().total is None
        for _ in progress.tracked(range(3), 3, "BM25 terms of chunks", enabled=False):
            assert progress.current().stage == "BM25 terms of chunks"
        assert progress.current().describe() == "building the index"
    assert progress.current() is None


def test_one_item_work_stays_off_the_board():
    # A question's embedding is one batch: it must not flash up in /health or hide a rebuild.
    for _ in progress.tracked(["问题"], 1, "embedding 1 texts (batches)", enabled=False):
        assert progress.current() is None


def test_work_left_half_done_is_cleared():
    work = progress.tracked(range(100), 100, "abandoned", enabled=False)
    next(work)
    assert progress.current().stage == "abandoned"
    work.close()  # what a `break` out of the loop, or an exception in it, does
    assert progress.current() is None


def test_describe_gives_percent_step_count_and_time_left():
    snapshot = progress.Snapshot("embedding 900 texts (batches)", 333, 900, 8.0, 40.2, 0.0)
    assert snapshot.describe() == "37% (embedding 900 texts (batches): 333/900, about 40 s left)"


def test_the_board_is_safe_across_threads():
    """Workers advance their own work while a reader polls: every snapshot is whole, and all is cleared."""
    errors, snapshots = [], []
    stop = threading.Event()

    def worker(n: int) -> None:
        try:
            for _ in progress.tracked(range(2000), 2000, f"worker {n}", enabled=False):
                pass
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    def reader() -> None:
        while not stop.is_set():
            now = progress.current()
            if now is not None:
                snapshots.append(now)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert errors == [] and progress.current() is None
    assert all(s.stage.startswith("worker ") and 0 <= s.done <= s.total == 2000 for s in snapshots)
