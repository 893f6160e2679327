"""Which question words the documents know: the lexical tests behind abstention (no model)."""

from __future__ import annotations

from types import SimpleNamespace

from rag.answer.extractive import _in_text, known_share, unknown_terms


class _Vocabulary:
    def __init__(self, words):
        self._df = {w: 1 for w in words}

    def document_frequencies(self):
        return self._df


def _index(text: str, vocabulary: list[str]):
    """Just what the lexical tests read: the documents' text and the BM25 vocabulary."""
    return SimpleNamespace(documents={"d": SimpleNamespace(text=text)}, memo={},
                           sentence_bm25=_Vocabulary(vocabulary))


def test_chinese_word_cut_with_a_glued_character_counts_as_used():
    index = _index("刘七在战斗中被杀。魏舒史称魏献子。", ["战斗", "魏献子"])
    assert _in_text(index, "刘七是")  # "刘七" + the "是" the splitter glued on
    assert _in_text(index, "魏舒史")
    assert not _in_text(index, "天气")
    assert not _in_text(index, "七")  # one character says nothing
    assert known_share(index, "刘七是怎么死的？") > 0


def test_latin_words_are_not_found_inside_other_words():
    index = _index("pubmed and akhmetzyanova", ["pubmed"])
    assert not _in_text(index, "us") and not _in_text(index, "my")


def test_a_capitalised_stopword_opening_an_english_question_is_not_an_unknown_name():
    index = _index("间充质干细胞 MSCs 的临床证据", ["mscs", "间充质干细胞"])
    assert unknown_terms(index, "At what stage is the clinical evidence for MSCs?") == []
    assert unknown_terms(index, "What is the capital of France?") == ["France"]
