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
    """Just what the lexical tests read: the documents' text, their order and the BM25 vocabulary."""
    memo: dict = {}
    return SimpleNamespace(documents={"d": SimpleNamespace(text=text)}, memo=memo,
                           layout=SimpleNamespace(order=["d"], sentence_counts=[1]),
                           memoised=lambda key, compute: memo[key] if key in memo else memo.setdefault(key, compute()),
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


def test_an_english_name_rendered_in_chinese_in_the_documents_is_known():
    # The review writes 阿尔茨海默病; an English question says "Alzheimer's".
    index = _index("阿尔茨海默病患者接受了MSC治疗。", ["阿尔茨海默病", "患者", "msc"])
    assert unknown_terms(index, "How many Alzheimer's patients were treated?") == []
    # A name whose renderings are all absent stays unknown: 帕金森病 is not in these documents.
    assert unknown_terms(index, "Does MSC therapy work for Parkinson's disease?") == ["Parkinson"]


def test_renderings_come_from_the_dictionary_and_are_never_one_character():
    from rag.answer.translation import chinese_renderings

    assert "阿尔茨海默病" in chinese_renderings("Alzheimer")
    assert "法国" in chinese_renderings("France")
    assert all(len(word) >= 2 for word in chinese_renderings("France"))  # not 法, which 方法 holds
    assert chinese_renderings("阿尔茨海默") == frozenset() and chinese_renderings("") == frozenset()
    assert chinese_renderings("Xyzzyplugh") == frozenset()


def test_english_words_are_looked_up_by_lemma_and_by_the_phrase_they_are_in():
    from rag.answer.translation import english_word_renderings

    question = "What kinds of molecules do extracellular vesicles carry?"
    assert "囊泡" in english_word_renderings(question, "vesicles")  # plural -> its lemma
    assert "分子" in english_word_renderings(question, "molecules")
    phrase = "Can stem cells cure type 1 diabetes?"
    assert "干细胞" in english_word_renderings(phrase, "stem")  # "stem" alone is a plant's stem; "stem cell" is 干细胞
    assert "糖尿病" in english_word_renderings(phrase, "diabetes")
    assert all(len(w) >= 2 for word in ("can", "stem", "cells", "cure", "type") for w in english_word_renderings(phrase, word))
    assert english_word_renderings(phrase, "vesicles") == frozenset()  # not a word of this question
    assert english_word_renderings("", "x") == frozenset() and english_word_renderings("干细胞", "干细胞") == frozenset()


def test_an_english_question_is_known_by_how_many_of_its_words_the_documents_render():
    index = _index("间充质干细胞可分泌细胞外囊泡，囊泡携带蛋白质和核酸等分子。", ["间充质干细胞", "囊泡", "分子"])
    on_topic = known_share(index, "What molecules do vesicles carry?")
    off_topic = known_share(index, "Can ibuprofen cure migraine headaches?")
    assert on_topic == 1.0  # molecules -> 分子, vesicles -> 囊泡, carry -> 携带
    assert off_topic == 0.0  # none of ibuprofen, cure, migraine, headaches is rendered in the text


def test_a_dictionary_word_is_not_known_from_a_part_of_it():
    # 多发性硬化 holds 硬化, but 肝硬化 is a word of its own that these documents never use.
    index = _index("间充质干细胞治疗多发性硬化的效果。", ["间充质干细胞", "多发性硬化", "效果"])
    assert not _in_text(index, "肝硬化")
    assert _in_text(index, "硬化")


def test_a_question_whose_words_the_documents_spell_never_reads_the_dictionary():
    from rag.answer import translation
    from rag.answer.translation import english_word_renderings

    translation._read_dictionary.cache_clear()
    translation._question_renderings.cache_clear()
    index = _index("Bang等人与Chung等人的研究结论不一致。", ["bang", "chung", "研究", "结论"])
    assert known_share(index, "为什么Bang和Chung的研究结论不一致？") > 0
    assert english_word_renderings("Bang等人2005年的研究", "2005") == frozenset()  # a number: nothing to look up
    assert translation._read_dictionary.cache_info().currsize == 0  # no ~2 s read for this question
    translation.warm_up()
    assert translation._read_dictionary.cache_info().currsize == 1
