"""Question forms and line roles that steer answering (no model)."""

from __future__ import annotations

import pytest

from rag.answer.abstention import AbstentionRule
from rag.ingest.corpus import BODY, REFERENCE, line_role
from rag.answer.language import asks_for_reason, asks_for_reference, question_focus
from rag.answer.extractive_answer import as_quoted


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
