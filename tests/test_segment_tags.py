"""The part-of-speech tagger shares jieba.posseg's tag table: the same tags as a tagger of its own."""

from __future__ import annotations

from pathlib import Path

import jieba.posseg

from rag.ingest import segment

REVIEW = Path(__file__).resolve().parents[1] / "corpus" / "msc-neuro-review.zh.txt"


def test_the_shared_tag_table_tags_like_a_tagger_that_reads_its_own():
    text = REVIEW.read_text(encoding="utf-8")[:6000]
    # Fresh tokenizers (the shared one's domain tags move into its tagger on the first cut).
    shared = segment.tagger_over(segment._load_tokenizer.__wrapped__())
    own = jieba.posseg.POSTokenizer(segment._load_tokenizer.__wrapped__())
    got = [(p.word, p.flag) for p in shared.cut(text)]
    assert got == [(p.word, p.flag) for p in own.cut(text)]
    assert ("间充质干细胞", "n") in got  # a domain word keeps its dictionary tag
