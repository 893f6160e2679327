"""The corpus text finder (rag.indexing.corpus_text): its answers are exactly those of reading every
document and every sentence, on a fresh build and after documents are added, replaced and deleted.
Hash embedder, no model load."""

from __future__ import annotations

import random

import pytest

from rag.indexing import index as index_mod
from rag.indexing.corpus_text import CorpusText, corpus_text, same_length_lower
from rag.indexing.embedder import HashEmbedder
from rag.ingest.corpus import load_document
from tests.test_incremental_build import DOCS
from tests.test_segments import MORE, _settings


def _brute_sentences(index, s: str) -> list[int]:
    return [i for i in range(len(index.sentences)) if s in index.sentence_text(i).lower()]


def _brute_holds(index, s: str) -> bool:
    return any(s in d.text.lower() for d in index.documents.values())


def _probes(index, n: int = 300) -> list[str]:
    """Pieces of the documents (present) and pieces with one character changed (mostly absent)."""
    rng = random.Random(3)
    texts = [d.text.lower() for d in index.documents.values()]
    out = ["间充质", "bang", "2019", "肝硬化", "q", "量子计算", "天气", "x" * 5]
    for _ in range(n):
        t = rng.choice(texts)
        a = rng.randrange(len(t))
        piece = t[a:a + rng.randint(1, 6)]
        out.append(piece)
        k = rng.randrange(len(piece))
        out.append(piece[:k] + rng.choice("龘鱻x7é") + piece[k + 1:])
    return out


def _check(index) -> None:
    found = CorpusText(index)
    for s in (p for p in _probes(index) if "\n" not in p):  # a newline joins documents: no sentence holds one
        assert found.holds(s) == _brute_holds(index, s), s
        assert found.sentences_holding(index, s) == _brute_sentences(index, s), s


def test_finder_answers_as_reading_everything(tmp_path):
    built = index_mod.build(_settings(tmp_path, {**DOCS, **MORE}), HashEmbedder(), progress=False)
    _check(built)
    assert corpus_text(built) is corpus_text(built)  # made once


def test_finder_follows_document_changes(tmp_path):
    settings = _settings(tmp_path, {**DOCS, **MORE})
    built = index_mod.build(settings, HashEmbedder(), progress=False)
    rules = index_mod.structure_rules(settings)
    first, second = sorted(built.documents)[:2]
    changed = index_mod.change(settings, HashEmbedder(), built, {
        first: None,
        second: load_document(second, "替换后的文档\nBang等人在2005年报告了新的结果,患者的运动评分改善了。\n", rules),
        "new/z.txt": load_document("new/z.txt", "新增文档\n第二项研究由Chung完成,纳入了60例患者。\n", rules),
    })
    _check(changed)
    assert _brute_sentences(changed, "chung")  # the probe list reaches the added document


def test_lower_case_keeps_offsets():
    text = "İstanbul研究与MSC"
    lowered = same_length_lower(text)
    assert len(lowered) == len(text) and lowered.endswith("研究与msc")
    assert same_length_lower("ABC") == "abc"


@pytest.mark.parametrize("absent", ["龘鱻", "zzqq", "鱻"])
def test_absent_strings_are_ruled_out_without_reading_the_text(tmp_path, absent):
    built = index_mod.build(_settings(tmp_path, DOCS), HashEmbedder(), progress=False)
    found = CorpusText(built)
    found.text = None  # reading the text now would fail: the bitmaps alone must answer
    assert not found.holds(absent)


def test_a_string_whose_every_pair_occurs_is_still_looked_for(tmp_path):
    built = index_mod.build(_settings(tmp_path, {"a.txt": "标题\n甲乙是第一句话。乙丙是第二句话。\n"}), HashEmbedder(), progress=False)
    found = CorpusText(built)
    assert found.holds("甲乙") and found.holds("乙丙") and not found.holds("甲乙丙")
    assert found.sentences_holding(built, "甲乙丙") == []
