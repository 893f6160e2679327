"""A build that reuses an earlier one (its split documents, BM25 terms and vectors) is the same
index as a build from scratch of the same corpus: same passages, same vectors, same BM25 scores
and vocabulary, same answers. One test per update path: add, replace, delete, and reuse of a
build read back from disk. Hash embedder, no model load."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.answer.abstention import AbstentionRule
from rag.answer.answer_models import load_answer_models
from rag.config import Settings
from rag.indexing import index as index_mod
from rag.indexing import lexical, lifecycle
from rag.indexing.embedder import HashEmbedder
from rag.pipeline import Pipeline

DOCS = {
    "a.txt": "中风的临床案例\nBang等人于2005年开展的一项研究纳入了30例急性卒中患者,结果显示该疗法安全。\n"
             "在更近的一项研究中,Levy等人(2019年)报道了36例慢性卒中患者接受了同种异体MSCs输注。\n",
    "b.txt": "阿尔茨海默病\nKim等人(2021年)通过脑室注射治疗9例轻至中度患者,随访至第48周。\n"
             "Xie等人(2023年)鼻内给予外泌体,受试者每周两次接受治疗。\n",
    "c.txt": "脊髓损伤\n研究者对10例脊髓损伤患者进行了自体脂肪来源MSCs的鞘内输注,其中7例患者分级改善。\n",
}
NEW = "多发性硬化症\n一项II期临床试验证实了鞘内注射神经祖细胞的安全性,共纳入54例患者。\n"
QUESTIONS = ["Levy等人纳入了多少例患者？", "鞘内注射的研究有哪些？", "Kim等人随访了多久？", "多发性硬化症的试验纳入了几例？"]


def _settings(root: Path, files: dict[str, str]) -> Settings:
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for old in corpus.glob("*.txt"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return Settings(corpus_dir=corpus, index_dir=root / "index", cache_dir=root / "cache", embedding_model="hash-test")


def _half_rows(index: index_mod.Index) -> np.ndarray:
    """Which of the view's sentence rows keep their vector as float16 (a Postgres view, ``rag.indexing.pg.rows``)."""
    layout = index.layout
    block = np.searchsorted(layout.sentence_bases, layout.sentence_rows, side="right") - 1
    return np.array([s.sentence_vectors.dtype == np.float16 for s in layout.segments])[block]


def _as_kept(reused: index_mod.Index, want: np.ndarray) -> np.ndarray:
    """``want`` (a fresh build's sentence vectors) as ``reused`` keeps them: rounded to float16 in
    the rows that keep float16."""
    half = _half_rows(reused)
    out = want.copy()
    out[half] = want[half].astype(np.float16).astype(np.float32)
    return out


def _same_index(reused: index_mod.Index, fresh: index_mod.Index) -> None:
    assert reused.sentences == fresh.sentences and reused.chunks == fresh.chunks
    assert {k: d.text for k, d in reused.documents.items()} == {k: d.text for k, d in fresh.documents.items()}
    np.testing.assert_array_equal(reused.sentence_vectors, _as_kept(reused, np.asarray(fresh.sentence_vectors)))
    got_texts, got = index_mod.embedded_texts(reused)
    want_texts, want = index_mod.embedded_texts(fresh)
    assert got_texts == want_texts
    np.testing.assert_array_equal(got, _as_kept(reused, want))  # the sentences: all a build embeds
    got_chunks = reused.chunk_vectors.reconstruct_n(0, reused.chunk_vectors.ntotal)
    want_chunks = fresh.chunk_vectors.reconstruct_n(0, fresh.chunk_vectors.ntotal)
    if _half_rows(reused).any():  # means of sentence vectors kept as float16
        np.testing.assert_allclose(got_chunks, want_chunks, atol=1e-3)
    else:
        np.testing.assert_array_equal(got_chunks, want_chunks)
    for a, b in ((reused.chunk_bm25, fresh.chunk_bm25), (reused.sentence_bm25, fresh.sentence_bm25)):
        assert a.document_frequencies() == b.document_frequencies()
        for question in QUESTIONS:
            np.testing.assert_allclose(a.scores(question), b.scores(question), atol=1e-6)
    models = replace(load_answer_models(), rule=AbstentionRule({}, bias=5.0))
    settings = Settings(embedding_model="hash-test")
    for question in QUESTIONS:
        got = Pipeline(settings, reused, HashEmbedder(), models).ask(question)
        want = Pipeline(settings, fresh, HashEmbedder(), models).ask(question)
        if not _half_rows(reused).any():
            assert (got.answer, got.citations, got.short_answer) == (want.answer, want.citations, want.short_answer)
        else:  # float16 sentence vectors: the same answer and citations; scores (shares of the best) within 0.5%
            unscored = [[c.model_copy(update={"score": 0.0}) for c in x.citations] for x in (got, want)]
            assert (got.answer, unscored[0], got.short_answer) == (want.answer, unscored[1], want.short_answer)
            np.testing.assert_allclose([c.score for c in got.citations], [c.score for c in want.citations], rtol=5e-3, atol=1e-6)


@pytest.mark.parametrize("change", ["add", "replace", "delete"])
def test_a_reusing_build_equals_a_fresh_build(tmp_path, change):
    before = index_mod.build(_settings(tmp_path / "x", DOCS), HashEmbedder(), progress=False)
    after = dict(DOCS)
    if change == "add":
        after["d.txt"] = NEW
    elif change == "replace":
        after["b.txt"] = DOCS["b.txt"].replace("9例", "12例") + NEW
    else:
        del after["a.txt"]
    settings = _settings(tmp_path / "x", after)
    reused = index_mod.build(settings, HashEmbedder(), progress=False, reuse=before)
    fresh = index_mod.build(_settings(tmp_path / "y", after), HashEmbedder(), progress=False)
    _same_index(reused, fresh)


def test_unchanged_documents_are_not_split_or_tokenised_again(tmp_path, monkeypatch):
    before = index_mod.build(_settings(tmp_path, DOCS), HashEmbedder(), progress=False)
    split, tokenised = [], []
    real_load, real_terms = index_mod.load_corpus.__globals__["load_document"], lexical.terms_of
    monkeypatch.setitem(index_mod.load_corpus.__globals__, "load_document",
                        lambda doc_id, *a: split.append(doc_id) or real_load(doc_id, *a))
    monkeypatch.setattr(lexical, "terms_of", lambda text: tokenised.append(text) or real_terms(text))
    embedded: list[str] = []

    class CountingEmbedder(HashEmbedder):
        def encode(self, texts, is_query, progress=False):
            embedded.extend(texts)
            return super().encode(texts, is_query, progress)

    settings = _settings(tmp_path, {**DOCS, "d.txt": NEW})
    index_mod.build(settings, CountingEmbedder(), progress=False, reuse=before)
    assert split == ["d.txt"]
    assert tokenised and all(text.startswith("多发性硬化症") or "II期" in text for text in tokenised)
    assert embedded and all(text.startswith("多发性硬化症") or "II期" in text for text in embedded)


def test_reuse_works_from_a_build_read_back_from_disk(tmp_path):
    settings = _settings(tmp_path / "x", DOCS)
    lifecycle.publish(index_mod.build(settings, HashEmbedder(), progress=False), settings.index_dir)
    loaded = lifecycle.load(settings.index_dir)
    assert loaded.chunk_bm25.terms is not None and loaded.sentence_bm25.terms is not None
    settings = _settings(tmp_path / "x", {**DOCS, "d.txt": NEW})
    reused = index_mod.build(settings, HashEmbedder(), progress=False, reuse=loaded)
    fresh = index_mod.build(_settings(tmp_path / "y", {**DOCS, "d.txt": NEW}), HashEmbedder(), progress=False)
    _same_index(reused, fresh)


def test_a_build_with_other_split_settings_is_not_reused_for_terms(tmp_path):
    before = index_mod.build(_settings(tmp_path / "x", DOCS), HashEmbedder(), progress=False)
    settings = _settings(tmp_path / "x", DOCS).model_copy(update={"chunk_max_chars": 40})
    reused = index_mod.build(settings, HashEmbedder(), progress=False, reuse=before)
    fresh = index_mod.build(_settings(tmp_path / "y", DOCS).model_copy(update={"chunk_max_chars": 40}),
                            HashEmbedder(), progress=False)
    _same_index(reused, fresh)
