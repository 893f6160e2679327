"""The part-of-speech tagger shares jieba.posseg's tag table: the same tags as a tagger of its own."""

from __future__ import annotations

from pathlib import Path

import jieba.posseg

from rag.ingest import segment

REVIEW = Path(__file__).resolve().parents[1] / "corpus" / "msc-neuro-review.zh.txt"


def test_the_shared_tag_table_tags_like_a_tagger_that_reads_its_own():
    text = REVIEW.read_text(encoding="utf-8")[:6000]
    tokenizer = segment._tokenizer()
    domain_tags = dict(tokenizer.user_word_tag_tab)  # the first cut moves these into the tagger
    own = jieba.posseg.POSTokenizer(tokenizer)
    want = [(p.word, p.flag) for p in own.cut(text)]
    tokenizer.user_word_tag_tab = domain_tags or tokenizer.user_word_tag_tab
    segment._tagger.cache_clear()
    got = [(word, tag) for word, tag, _, _ in segment.tagged(text)]
    assert got == want
    assert ("间充质干细胞", "n") in got  # a domain word keeps its dictionary tag
