"""Answer types: which kind of value a question asks for, and whether a text holds one (no model)."""

from __future__ import annotations

import pytest

from rag.answer.answer_types import asked_types, holds_type, missing_types, value_pattern, value_spans


@pytest.mark.parametrize("question,kinds", [
    ("东关街全长多少？", {"measure"}),
    ("这座塔有多高？", {"measure"}),
    ("东关街有多长？", {"measure"}),
    ("随访了多长时间？", {"duration"}),
    ("该银行成立于哪一年？", {"when"}),
    ("四加亭位于什么地方？", {"place"}),
    ("卡塞雷斯的人口有多少？", {"count"}),
    ("多少人参加了比赛？", {"count"}),
    ("Levy的剂量是多少？", {"dose"}),
    ("马飚毕业于哪所大学？", {"organisation"}),
    ("患者平均多少岁？", {"age"}),
    ("应该在零下多少度保存？", {"temperature"}),
    ("为什么Bang和Chung的结论不一致？", set()),
])
def test_asked_types_of_question(question, kinds):
    assert set(asked_types(question)) == kinds


@pytest.mark.parametrize("text,kind", [
    ("全长1,000米", "measure"),
    ("约只有8公斤重", "measure"),
    ("身高2米11", "measure"),
    ("平均病程为卒中后4.2年", "duration"),
    ("持续生存到马斯垂克阶末期，生存了近2,400万年", "duration"),
    ("约3.5万公里", "measure"),
    ("年仅两岁", "measure"),  # "多大" asks a size or an age
    ("在1221年收复", "when"),
    ("三个月后进行鞘内注射", "when"),
    ("随访至第48周", "when"),
    ("人口为150万", "count"),
    ("2007年人口普查数据为91606人", "count"),
    ("剂量最高达150万个细胞/公斤体重", "dose"),
    ("1×10⁸个细胞", "dose"),
    ("中央民族学院政治系毕业", "organisation"),
    ("重庆武隆县仙女山镇", "place"),
])
def test_holds_type_accepts_right_answers(text, kind):
    assert holds_type(text, kind)


@pytest.mark.parametrize("text,kind", [
    ("2023年", "duration"),  # a calendar year is a date, not a duration
    ("这是一个苹果", "when"),
    ("疗法安全", "dose"),
])
def test_holds_type_rejects_texts_without_the_value(text, kind):
    assert not holds_type(text, kind)


def test_a_value_with_a_ten_thousands_multiplier_is_whole():
    assert value_pattern("duration").search("生存了近2,400万年。").group() == "2,400万年"


def test_dose_value_spans_the_whole_dose_with_its_unit():
    match = value_pattern("dose").search("剂量最高达150万个细胞/公斤体重")
    assert match.group() == "150万个细胞/公斤体重"


def test_missing_types_lists_asked_kinds_no_passage_holds():
    assert missing_types("东关街有多长？", ["东关街是一条东西向街道。"]) == ["measure"]
    assert missing_types("东关街有多长？", ["东关街全长1122米。"]) == []


def test_unknown_type_is_a_value_error():
    with pytest.raises(ValueError):
        holds_type("1米", "colour")


@pytest.mark.parametrize("question,asks", [("蓝线裸顶鲷的俗名是什么？", True), ("内台航路也叫什么？", True), ("刺角瓜又名什么？", True),
                                           ("医院更名为什么？", True), ("盾柱木的名字是怎样得来的？", False),
                                           ("书的名字是什么意思？", False), ("Levy的剂量是多少？", False)])
def test_a_question_for_another_name_asks_for_an_alias(question, asks):
    assert ("alias" in asked_types(question)) is asks


@pytest.mark.parametrize("text,names", [
    ("蓝线裸顶鲷，又称蓝线白𫚭，俗名龙尖，为辐鳍鱼纲", ["蓝线白𫚭", "龙尖"]),
    ("内台航路，或称内台航线，是台湾日治时期连结日本内地与台湾的海运航线", ["内台航线"]),
    ("马来穿山甲（学名：'），又名爪哇穿山甲或爪哇鲮鲤，是东南亚的", ["爪哇穿山甲或爪哇鲮鲤"]),  # not the blank 学名
    ("越南投资发展银行初名为越南建设银行，英文全称：Bank for Investment and Development of Vietnam，简称：BIDV",
     ["越南建设银行", "Bank for Investment and Development of Vietnam", "BIDV"]),  # after 为 and ：, never "全称…"
    ("别名无头土香（台湾和闽南一带）、无头香", ["无头土香（台湾和闽南一带）、无头香"]),  # what the name brackets
])
def test_an_alias_value_is_the_name_after_its_cue(text, names):
    assert [text[a:b] for a, b in value_spans("alias", text)] == names
