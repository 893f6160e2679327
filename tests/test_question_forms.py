"""Question forms and line roles that steer answering (no model)."""

from __future__ import annotations

import pytest

from rag.answer.abstention import AbstentionRule
from rag.ingest.corpus import BODY, REFERENCE, line_role
from rag.answer.language import asks_for_reason, asks_for_reference, defined_term, question_focus, reference_topic
from rag.answer.extractive import _numbered_labels, defines
from rag.answer.extractive_answer import as_quoted
from rag.ingest.segment import content_terms, search_terms


@pytest.mark.parametrize("line,section,caption,role", [
    ("[1] Akhmetzyanova, E.; Shulman, I. 间充质干细胞… Biologics 2025, 5, 37.", "参考资料:", False, REFERENCE),
    ("https://doi.org/10.3390/biologics5040037", "参考资料:", False, REFERENCE),
    ("Biologics 2025 , 5 , 37.", "参考资料:", False, REFERENCE),
    ("图1:基于间充质干细胞的神经再生疗法示意图。", "正文", False, REFERENCE),
    ("Figure 2. Outcomes by dose.", "Results", False, REFERENCE),
    ("鞘内注射脂肪来源间充质干细胞治疗创伤性脊髓损伤:I期试验", "正文", True, REFERENCE),
    ("2024年,在一项I期临床试验中,9名患者接受了治疗。", "正文", True, BODY),
    ("Bang等人于2005年开展的一项研究纳入了30例患者。", "正文", False, BODY),
])
def test_line_role(line, section, caption, role):
    assert line_role(line, section, caption) == role


def test_asks_for_reference_and_reason():
    assert asks_for_reference("这篇综述的参考文献是哪篇？") and asks_for_reference("What is the DOI of the review?")
    assert not asks_for_reference("Bang等人输注了多少细胞？")
    assert asks_for_reason("为什么结论不一致？") and asks_for_reason("Why did they differ?")
    assert not asks_for_reason("结论是什么？")


def test_question_focus_drops_question_words():
    assert "什么" not in question_focus("黄鳍紫鱼的身体是什么颜色的？")
    assert "颜色" in question_focus("黄鳍紫鱼的身体是什么颜色的？")


def test_quoted_reference_number_is_not_a_marker():
    assert as_quoted("见文献[1]\n及[12]。") == "见文献［1］ 及［12］。"


def test_rule_declines_when_no_question_word_is_in_the_documents():
    rule = AbstentionRule({"top_dense": 100.0}, 0.0, 0.5)
    assert rule.answerable({"top_dense": 0.9, "known_share": 0.2})
    assert not rule.answerable({"top_dense": 0.9, "known_share": 0.0})


@pytest.mark.parametrize("question", ["这篇综述引用了哪些参考文献？", "列出参考文献", "这篇文章的DOI是什么？", "原文发表在哪个期刊？",
                                      "Which references does the review cite?", "What is the DOI of this review?"])
def test_a_question_for_the_documents_own_references_has_no_topic_of_its_own(question):
    assert asks_for_reference(question) and content_terms(reference_topic(question)) == []


def test_a_question_for_references_on_a_subject_keeps_the_subject():
    assert {"量子", "计算"} <= set(content_terms(reference_topic("推荐几篇关于量子计算的参考文献")))
    assert {"higgs", "boson"} <= set(content_terms(reference_topic("What journal published the Higgs boson discovery?")))
    assert _numbered_labels("图 2显示了什么？表1呢？") == ["图2", "表1"] and _numbered_labels("Bang等人的研究") == []


def test_rule_follows_the_reference_decision_before_anything_else():
    rule = AbstentionRule({"top_dense": 100.0}, -1000.0, 0.5)  # declines everything else
    assert rule.answerable({"top_dense": 0.9, "known_share": 0.0, "reference_answer": 1.0})
    assert not AbstentionRule({"top_dense": 100.0}, 0.0, 0.5).answerable(
        {"top_dense": 0.9, "known_share": 1.0, "reference_off_topic": 1.0})


@pytest.mark.parametrize("question,topic", [
    ("这篇综述的结论是什么？", ["结论"]),
    ("这项研究纳入了多少人", ["纳入"]),
    ("这篇文章的主要结论？", ["主要", "结论"]),
    ("每位患者注射了多少细胞", ["患者", "注射", "细胞"]),
    ("为啥这种干细胞疗法到现在还没普及？", ["细胞", "干细胞", "疗法", "现在", "普及"]),
    ("哪所大学？第几名？多少岁？", ["大学"]),
])
def test_pointing_and_question_words_are_not_topic_words(question, topic):
    assert content_terms(question) == topic


@pytest.mark.parametrize("question,kept", [("几何学是什么", "几何学"), ("何法倪为什么会被选为皇后？", "皇后"),
                                           ("公司本部在哪里", "本部"), ("个人所得税怎么算", "个人"),
                                           ("名人的故事", "名人")])
def test_words_that_only_start_like_pointing_words_stay_topic_words(question, kept):
    assert kept in content_terms(question)


@pytest.mark.parametrize("question,term", [("什么是标准杆？", "标准杆"), ("MSC是什么？", "MSC"), ("“六片”指的是什么？", "六片"),
                                           ("百老汇剧院指的是什么？", "百老汇剧院"), ("昌昌是什么王国的首都？", None),
                                           ("Bang等人用了多少细胞？", None)])
def test_a_definition_question_names_its_term(question, term):
    assert defined_term(question) == term


@pytest.mark.parametrize("sentence,term,says", [
    ("标准杆，是一个高尔夫球运动术语。", "标准杆", True),
    ("间充质干细胞(MSCs)是一类具有多向分化潜能的基质细胞。", "MSC", True),  # the term as an abbreviation
    ("牛车水（；）是新加坡的唐人街。", "牛车水", True),
    ("“六片”指主入口管理区。", "六片", True),
    ("标准杆数是指预先估计的完成杆数。", "标准杆", False),  # another, longer term
    ("研究发现,MSCs的治疗作用主要并非通过直接分化实现。", "MSC", False),  # uses the term, says nothing of what it is
])
def test_a_sentence_that_says_what_a_term_is(sentence, term, says):
    assert defines(sentence, term) is says


def test_an_acronyms_plural_is_also_searched_as_its_singular():
    terms = search_terms("细胞外囊泡(EVs)与神经祖细胞(NPs)")
    assert {"evs", "ev", "nps", "np"} <= set(terms)
    assert "b" not in search_terms("Bs") and "crispr" in search_terms("CRISPR")  # not plural acronyms
