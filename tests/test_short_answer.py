"""Short-answer spans: candidates, the question-word gap, and choosing (with a fixed chooser, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.answer.short_answer import (Chooser, balanced, candidates, choose, counted_value, feature_names, leads,
                                     load_chooser, question_gap, wants_short_answer)


def _text(sentence, span):
    return sentence[span.start:span.end]


def test_question_gap_is_the_answer_between_matched_words():
    sentence = "大联盟在1991年修改了对无安打比赛的定义，至少必须投满9局。"
    gap = question_gap("大联盟在什么时候修改了对无安打比赛的定义？", sentence)
    assert sentence[gap.start:gap.end] == "1991年" and gap.left >= 2 and gap.right >= 2


def test_question_gap_runs_to_the_clause_end_without_a_right_match():
    sentence = "生命数耗完即算为踢爆，重生者无敌。"
    gap = question_gap("生命数耗完即算为什么？", sentence)
    assert sentence[gap.start:gap.end] == "踢爆" and gap.right == 0


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


def test_question_gap_takes_the_measure_word_of_a_count_question():
    sentence = "若游戏中离，则4分钟内不得进行配对。"
    gap = question_gap("若游戏中离，则多少分钟内不得进行配对？", sentence)
    assert sentence[gap.start:gap.end] == "4分钟"


def test_a_date_is_one_candidate_and_no_value_cuts_a_number_or_a_word():
    sentence = "西贡商信银行成立于1991年12月21日，共有36例患者。"
    spans, _ = candidates("西贡商信银行成立的时间是什么时候？", sentence)
    values = {_text(sentence, s) for s in spans if s.kind == "value"}
    assert "1991年12月21日" in {_text(sentence, s) for s in spans}
    assert "1日" not in values and "21日" in values
    spans, _ = candidates("一共有几例？", sentence)
    assert "36例" in {_text(sentence, s) for s in spans} and "36例患" not in {_text(sentence, s) for s in spans}


def test_a_gap_is_also_offered_without_its_linking_word():
    sentence = "第二届比赛于2009年9月27日-10月9日举行。"
    texts = {_text(sentence, s) for s in candidates("第二届比赛什么时候举行的？", sentence)[0]}
    assert {"于2009年9月27日-10月9日", "2009年9月27日-10月9日"} <= texts


def test_an_open_question_is_answered_by_a_clause_not_a_value():
    sentence = "2021年的试验未见疗效，差异源于病程不同。"
    kinds = {s.kind for s in candidates("为什么结论不一致？", sentence)[0]}
    assert kinds <= {"sentence", "clause", "run", "gap"} and "clause" in kinds


def test_shipped_chooser_gives_the_reason_clause_of_a_why_question():
    sentences = ["两项研究的结论并不一致，这些差异可能源于患者病程的不同。"]
    n, start, end = choose("为什么两项研究的结论不一致？", sentences, load_chooser())
    assert "差异可能源于" in sentences[n][start:end]


def test_a_statement_gets_no_short_answer():
    uniform = Chooser(np.zeros(len(feature_names())))
    assert choose("有研究发现外泌体中等剂量组认知改善最明显", ["中等剂量组的认知改善最为显著。"], uniform) is None


@pytest.mark.parametrize("question,short,leading", [
    ("共纳入几例患者？", "9例", True),
    ("为什么结论不一致？", "差异源于病程不同", False),  # the quote itself is the answer
    ("那疗效能确定吗？", "疗效尚不明确", False),
    ("这是什么？", "甲" * 61, False),  # most of a sentence: said once, in the quote
    ("共纳入几例患者？", "共纳入9例患者", False),  # the whole passage
])
def test_the_short_answer_leads_only_when_it_is_short_and_not_the_passage(question, short, leading):
    assert leads(question, short, "共纳入9例患者") is leading


def test_choose_prefers_a_value_with_its_unit_over_a_bare_number():
    uniform = Chooser(np.zeros(len(feature_names())))
    sentence = "36例慢性卒中患者接受了输注(剂量最高达150万个细胞/公斤体重)。"
    n, start, end = choose("How many patients were treated?", [sentence], uniform)
    assert sentence[start:end] == "36例"


def test_a_short_answer_that_is_most_of_its_sentence_is_not_said_twice():
    passage = "给药后出现短暂性发热,但均在1–2天内自行消退。这种反应可能反映了免疫应答。"
    assert not leads("发热几天消退？", "给药后出现短暂性发热,但均在1–2天内自行消退", passage)
    assert leads("发热几天消退？", "1–2天", passage)


def test_words_inside_a_clause_are_candidates_when_no_rule_marks_them():
    sentence = "牛佬，香港漫画家，原名文启明，1961年10月15日出生。"
    spans, _ = candidates("牛佬的职业是什么？", sentence)
    texts = {_text(sentence, s): s.kind for s in spans}
    assert texts.get("漫画家") == "words"
    assert texts.get("牛佬") != "words"  # a run of the question's own words is not its answer
    assert all("，" not in t for t, kind in texts.items() if kind == "words")


def test_a_value_keeps_its_unit_when_jieba_joins_the_unit_to_the_next_word():
    sentence = "给药后立即出现短暂性发热,但均在1–2天内自行消退。"  # jieba: "天内"
    n, start, end = choose("注射后发热几天消退？", [sentence], load_chooser())
    assert sentence[start:end] == "1–2天"


def test_the_value_next_to_the_questions_words_wins_among_values_of_the_asked_kind():
    uniform = Chooser(np.zeros(len(feature_names())))
    sentence = "地球体育场可以容纳6,476名观众，其中主看台有2,173个坐席，对面是可容606名观众的阶梯看台。"
    n, start, end = choose("地球体育场能容纳多少名观众？", [sentence], uniform)
    assert sentence[start:end] == "6,476名"  # the question-word gap, a count as much as the pattern's


def test_no_value_starts_or_ends_inside_a_number_with_separators():
    sentence = "地球体育场可以容纳6,476名观众，长1.5米。"
    spans = candidates("能容纳多少名观众？", sentence)[0]
    assert "6,476名" in {_text(sentence, s) for s in spans}
    assert not {"476名", ".5米"} & {_text(sentence, s) for s in spans if s.kind == "value"}
    assert "476名观众" not in {_text(sentence, s) for s in spans}  # no clause starts inside "6,476" either


def test_a_range_of_values_is_offered_without_the_particle_after_it():
    sentence = "生长于海拔100米至2,800米的地区。"
    texts = {_text(sentence, s) for s in candidates("五月艾所生长的地区海拔约是多少米？", sentence)[0]}
    assert "100米至2,800米" in texts


@pytest.mark.parametrize("question,sentence,answer", [
    # A range, not one of its ends.
    ("非洲的猴面包树果实的长度约是多少厘米？", "非洲猴面包树的果实长约15至20厘米。", "15至20厘米"),
    ("五月艾所生长的地区海拔约是多少米？", "生长于海拔100米至2,800米的地区，见于灌丛处。", "100米至2,800米"),
    # Another name: the name after the question's own cue (the chooser alone picked the whole sentence).
    ("蓝线裸顶鲷的俗名是什么？", "蓝线裸顶鲷，又称蓝线白𫚭，俗名龙尖，为辐鳍鱼纲鲈形目龙占鱼科的其中一个种。", "龙尖"),
    ("内台航路也叫什么？", "内台航路，或称内台航线，是台湾日治时期连结日本内地与台湾的海运航线。", "内台航线"),
    ("越南投资发展银行的英文名是什么？", "越南投资发展银行（英文全称：Bank for Investment and Development of Vietnam，简称：BIDV）。",
     "Bank for Investment and Development of Vietnam"),
    # A count with the measure word the question counts in.
    ("Levy等人的研究是几期试验？", "Levy等人(2019年)报道了一项I/II期临床试验的结果:36例慢性卒中患者接受了输注。", "I/II期"),
    ("香港在DVD分区属于第几区？", "香港在DVD分区属第三区（中国大陆属第六区，英国则属第二区）。", "第三区"),
    ("目前学校有几个校区？", "学校现有市中校区、长清校区两个校区。", "两个"),
])
def test_the_value_a_question_asks_for_is_its_short_answer(question, sentence, answer):
    n, start, end = choose(question, [sentence], load_chooser())
    assert sentence[start:end] == answer


def test_dates_times_and_ages_are_not_counted_values():
    assert counted_value("他几月出生？") is None and counted_value("随访了几周？") is None
    assert counted_value("Bang等人用了多少细胞？") is None
