"""Short-answer spans: candidates, the question-word gap, and choosing (with a fixed chooser, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.short_answer import Chooser, balanced, candidates, choose, feature_names, question_gap, wants_short_answer


def _text(sentence, span):
    return sentence[span.start:span.end]


def test_question_gap_is_the_answer_between_matched_words():
    sentence = "大联盟在1991年修改了对无安打比赛的定义，至少必须投满9局。"
    start, end = question_gap("大联盟在什么时候修改了对无安打比赛的定义？", sentence)
    assert sentence[start:end] == "1991年"


def test_question_gap_runs_to_the_clause_end_without_a_right_match():
    sentence = "生命数耗完即算为踢爆，重生者无敌。"
    start, end = question_gap("生命数耗完即算为什么？", sentence)
    assert sentence[start:end] == "踢爆"


def test_question_gap_is_none_without_matching_words():
    assert question_gap("这座塔有多高？", "猫喜欢鱼。") is None


@pytest.mark.parametrize("question,wanted", [
    ("为什么Bang和Chung的研究结论不一致？", False),
    ("哪些研究采用了鞘内注射？", False),
    ("How did they do it?", False),
    ("How many patients did Levy treat?", True),
    ("东关街全长多少？", True),
    ("Kim等人的试验纳入了几例患者？", True),
])
def test_wants_short_answer_only_where_a_span_answers(question, wanted):
    assert wants_short_answer(question) is wanted


def test_candidates_are_trimmed_distinct_and_balanced():
    sentence = "静脉输注自体骨髓来源的MSCs(1×10⁸个细胞),结果显示该疗法安全。"
    spans, _ = candidates("Bang等人输注了多少细胞？", sentence)
    texts = [_text(sentence, s) for s in spans]
    assert len(texts) == len(set((s.start, s.end) for s in spans))
    assert "1×10⁸个细胞" in texts
    assert all(t == t.strip("，,。 ") and balanced(t) for t in texts)


def test_balanced_brackets_and_quotes():
    assert balanced("《千年女王》") and balanced("（学名：）") and not balanced("MSCs(1×10⁸个")


def test_choose_prefers_a_value_of_the_asked_kind_in_any_sentence():
    uniform = Chooser(np.zeros(len(feature_names())))
    sentences = ["Kim等人开展了一项I期临床试验。", "研究共纳入9例患者,均植入储液囊。"]
    n, start, end = choose("Kim等人的试验纳入了几例患者？", sentences, uniform)
    assert (n, sentences[n][start:end]) == (1, "9例")


def test_choose_gives_nothing_for_a_why_question():
    uniform = Chooser(np.zeros(len(feature_names())))
    assert choose("为什么结论不一致？", ["差异源于病程不同。"], uniform) is None


def test_choose_prefers_a_value_with_its_unit_over_a_bare_number():
    uniform = Chooser(np.zeros(len(feature_names())))
    sentence = "36例慢性卒中患者接受了输注(剂量最高达150万个细胞/公斤体重)。"
    n, start, end = choose("How many patients were treated?", [sentence], uniform)
    assert sentence[start:end] == "36例"
