"""jieba is loaded once per process, however many threads ask for it first."""

from __future__ import annotations

import threading

from rag.ingest import segment


def test_concurrent_first_calls_share_one_tokenizer():
    segment._load_tokenizer.cache_clear()
    barrier = threading.Barrier(8)
    got = []

    def first_call():
        barrier.wait()  # all eight ask at the same moment, as a burst of first requests does
        got.append(segment._tokenizer())

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(tok is got[0] for tok in got)
    assert segment.cut("间充质干细胞治疗中风") == list(got[0].cut("间充质干细胞治疗中风"))
