"""Follow-up detection and rewriting (no model needed)."""

from __future__ import annotations

import pytest

from rag.answer.rewrite import follow_up_context, is_follow_up, rewrite

HISTORY = [
    {"role": "user", "content": "Levy等人2019年的卒中试验是怎么做的？"},
    {"role": "assistant", "content": "36例慢性卒中患者接受了一次输注。[1]"},
]


@pytest.mark.parametrize("question", ["那剂量是多少？", "随访了多久？", "第一次是怎么把细胞打进去的？", "这样做有什么好处？", "What about the dose?"])
def test_rewrite_question_without_subject_is_a_follow_up(question):
    assert is_follow_up(question)


@pytest.mark.parametrize("question", ["Kim等人纳入了几例患者？", "外泌体有什么优势？", "2024年的试验用了什么细胞？", "MSCs能穿过血脑屏障吗？"])
def test_rewrite_question_naming_its_subject_stands_alone(question):
    assert not is_follow_up(question)


def test_rewrite_follow_up_carries_last_user_turn_and_reply_without_markers():
    assert rewrite("那剂量是多少？", HISTORY) == "Levy等人2019年的卒中试验是怎么做的？ 36例慢性卒中患者接受了一次输注。 那剂量是多少？"


def test_rewrite_without_history_or_with_own_subject_is_unchanged():
    assert rewrite("那剂量是多少？", []) == "那剂量是多少？"
    assert rewrite("Kim等人纳入了几例患者？", HISTORY) == "Kim等人纳入了几例患者？"
    assert follow_up_context("那剂量是多少？", [{"role": "assistant", "content": "只有回答"}]) is None
