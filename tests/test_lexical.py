"""The vectorised BM25 build gives bm25s's own index: same scores, same vocabulary."""

from __future__ import annotations

import bm25s
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.indexing.lexical import Bm25, FlatCorpus, VectorisedBM25

WORDS = ["干细胞", "中风", "MSC", "剂量", "Bang", "2005", "外泌体", "", "a", "的"]

documents = st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), min_size=1, max_size=40)


def _reference(terms: list[list[str]]) -> bm25s.BM25:
    model = bm25s.BM25()
    model.index(terms, show_progress=False)
    return model


@settings(max_examples=150, deadline=None)
@given(documents, st.lists(st.sampled_from([w for w in WORDS if w]), min_size=1, max_size=4))  # queries never hold ""
def test_vectorised_build_scores_like_bm25s(terms, query):
    ours, ref = Bm25.from_terms(terms)._model, _reference(terms)
    assert set(ours.vocab_dict) == set(ref.vocab_dict)
    known = [t for t in query if t in ref.vocab_dict]
    if known:
        np.testing.assert_allclose(ours.get_scores(known), ref.get_scores(known), rtol=1e-6, atol=1e-7)


def test_vectorised_build_matrix_equals_bm25s_on_the_review_terms():
    from rag.ingest.segment import search_terms
    from tests.conftest import REVIEW

    lines = [line for line in REVIEW.read_text(encoding="utf-8").splitlines() if line.strip()]
    terms = [search_terms(line) or [""] for line in lines]
    ours, ref = Bm25.from_terms(terms)._model, _reference(terms)
    for token, i in ref.vocab_dict.items():
        if i >= len(ref.scores["indptr"]) - 1:
            continue  # bm25s's empty token sits past the matrix
        j = ours.vocab_dict[token]
        a = slice(ref.scores["indptr"][i], ref.scores["indptr"][i + 1])
        b = slice(ours.scores["indptr"][j], ours.scores["indptr"][j + 1])
        order = np.argsort(ref.scores["indices"][a])
        assert ours.scores["indices"][b].tolist() == ref.scores["indices"][a][order].tolist()
        np.testing.assert_allclose(ours.scores["data"][b], ref.scores["data"][a][order], rtol=1e-6)


def test_vectorised_index_saves_and_loads(tmp_path):
    bm25 = Bm25.from_terms([["干细胞", "中风"], ["剂量"], ["干细胞", "干细胞", "剂量"]])
    bm25.save(tmp_path)
    loaded = Bm25.load(tmp_path, 3)
    assert np.array_equal(loaded._model.get_scores(["干细胞"]), bm25._model.get_scores(["干细胞"]))


def test_other_inputs_still_take_bm25s_own_path():
    model = VectorisedBM25()
    model.index([["a", "b"], ["b"]], show_progress=False)
    assert model.get_scores(["b"]).shape == (2,)
    assert FlatCorpus.of([["x", "y", "x"]]).ids.ids.tolist() == [0, 1, 0]
