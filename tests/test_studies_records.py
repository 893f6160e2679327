"""Study records (rag.studies): every study of the review and of a second, differently written
document found, each field checked against hand-written expectations, every span exact."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.config import Settings
from rag.indexing.index import structure_rules
from rag.ingest.corpus import load_document
from rag.studies.records import Study, extract

ROOT = Path(__file__).resolve().parent.parent
REVIEW = ROOT / "corpus" / "msc-neuro-review.zh.txt"
OTHER = ROOT / "tests" / "data" / "studies-other.zh.txt"

# The studies the review describes, counted by hand in reading order:
# Bang 2005, Levy 2019, Chung 2021 (stroke); an unnamed 2024 phase II trial (multiple sclerosis);
# Macêdo 2024 and an unnamed phase I trial "同年" (spinal cord injury); Kim 2021 (Alzheimer's);
# Xie 2023 (Alzheimer's, exosomes); an unnamed 2024 phase I exosome trial (spinal cord injury).
# "Bang等人(2005)与Chung等人(2021)…" compares two of them: it is not a tenth.
REVIEW_STUDIES = ["bang-2005", "levy-2019", "chung-2021", "trial-2024", "macedo-2024", "trial-2024-2",
                  "kim-2021", "xie-2023", "trial-2024-3"]
# The second document, written for these tests: other diseases, year before the author, an
# English "et al.", a study described before it is named ("这项由…完成的"), "次年", arms with counts.
OTHER_STUDIES = ["moreau-2016", "wang-2018", "trial-2019", "tanaka-2020", "trial-2022"]

REVIEW_EXPECTED = {
    "bang-2005": {
        "label": "Bang等人于2005年", "disease": "急性大脑中动脉缺血性卒中", "stage": "急性", "patients": "30例",
        "arms": [], "cells": "自体骨髓来源的MSCs", "donor": "自体", "tissue": "骨髓", "route": "静脉输注",
        "dose": "1×10⁸个细胞", "follow_up": None, "safety": "结果显示该疗法安全",
        "efficacy": "并在巴氏指数(Barthel Index)上表现出不同程度的改善,且改良Rankin量表评分呈下降趋势",
        "limitations": None, "reference": None,
        "design.randomised": None, "design.controlled": None, "design.phase": None,
    },
    "levy-2019": {
        "label": "Levy等人(2019年)", "disease": "慢性卒中", "stage": "慢性", "patients": "36例", "arms": [],
        "cells": "同种异体骨髓来源MSCs", "donor": "同种异体", "tissue": "骨髓", "route": None,
        "dose": "剂量最高达150万个细胞/公斤体重", "follow_up": None, "safety": None, "efficacy": None,
        "design.phase": "I/II期", "design.randomised": None,
        "reference": "静脉注射异体间充质干细胞治疗慢性卒中的安全性和初步疗效的I/II期研究",
    },
    "chung-2021": {
        "label": "Chung等人于2021年", "disease": "缺血性卒中", "stage": "慢性", "patients": None,
        "arms": [("实验组", "39例"), ("对照组", "15例")], "cells": "自体MSCs", "donor": "自体", "tissue": None,
        "route": "静脉注射", "dose": None, "follow_up": "90天时的临床结局",
        "design.randomised": "随机", "design.controlled": "对照组(15例患者)",
        "safety": "同样证实了该疗法的安全性", "efficacy": "但未能证明自体MSCs能改善慢性卒中患者90天时的临床结局",
        "reference": "静脉注射间充质干细胞治疗缺血性中风的疗效和安全性",
    },
    "macedo-2024": {
        "label": "Macêdo等人(2024年)", "disease": "慢性颈段脊髓损伤", "stage": "慢性",
        "patients": "6例",  # two sentences after the name, past the reference title
        "cells": "自体骨髓来源MSCs", "donor": "自体", "tissue": "骨髓", "route": "脊髓内注射,三个月后进行鞘内注射",
        "dose": None, "design.randomised": "缺乏随机化",
        "safety": "该疗法被证实具有良好的安全性,MRI检查未发现新的胶质增生灶或肿瘤生长迹象",
        "efficacy": "然而,功能评估并未显示MSCs治疗后患者结局有显著改善",
        "limitations": "由于研究缺乏随机化设计且样本量仅为6例,尚无法得出明确结论。",
        "reference": "自体间充质干细胞移植治疗完全性颈髓损伤:一项初步研究",
    },
    "kim-2021": {
        "label": "Kim等人(2021年)", "disease": "轻至中度阿尔茨海默病", "stage": "轻至中度", "patients": "9例",
        "arms": [("低剂量", "3例"), ("高剂量", "6例")], "cells": "人脐带血来源的间充质干细胞(hUCB-MSCs)",
        "donor": None, "tissue": "脐带血", "route": "脑室注射",
        "dose": "低剂量(1.0×10⁷个细胞/2mL),6例接受高剂量(3.0×10⁷个细胞/2mL)", "follow_up": None,
        "design.phase": "I期", "design.controlled": "缺乏对照组",
        "safety": "给药后立即出现短暂性发热,但均在1–2天内自行消退",
        "limitations": "然而,由于缺乏对照组,尚难以就疗效得出明确结论。",
        "reference": "向阿尔茨海默病痴呆患者脑室内注射人脐带血间充质干细胞:一项 I 期临床试验",
    },
    "xie-2023": {
        "label": "Xie等人(2023年)", "disease": "轻至中度阿尔茨海默病", "patients": "9名",
        "cells": "同种异体脂肪组织MSC的外泌体(ahaMSC-Exos)", "donor": "同种异体", "tissue": "脂肪组织",
        "route": "鼻内给予", "dose": "不同剂量(2×10⁸、4×10⁸和8×10⁸个颗粒)", "follow_up": "随访至第48周",
        "design.open_label": "开放标签", "design.phase": "I/II期",
        "design.randomised": None, "design.controlled": None,  # "仍需…随机对照试验" is about studies to come
        "safety": "结果显示,所有剂量组的治疗均安全且耐受性良好",
        "reference": "同种异体人脂肪间充质干细胞来源外泌体治疗轻度至中度阿尔茨海默病患者的临床安全性和有效性:一项I/II期临床试验",
    },
    "trial-2024": {
        "disease": "进行性多发性硬化症", "design.randomised": "随机", "design.blinded": "双盲",
        "design.controlled": "安慰剂对照", "design.phase": "II期", "patients": None, "route": None,
        "cells": "骨髓间充质干细胞(MSC)来源的神经祖细胞(NPs)",
    },
    "trial-2024-2": {"label": "同年,在另一项近期的I期临床试验", "patients": "10例", "route": "鞘内输注",
                     "cells": "自体脂肪来源MSCs", "efficacy": "其中7例患者的美国脊髓损伤协会损伤量表(AIS)分级有所改善"},
    "trial-2024-3": {"design.single_arm": "单臂", "design.open_label": "开放标签", "patients": "9名",
                     "follow_up": "为期12个月的观察期", "route": "鞘内注射", "stage": "完全性亚急性"},
}

OTHER_EXPECTED = {
    "moreau-2016": {
        "label": "2016年，Moreau及其同事", "disease": "早期ALS", "design.randomised": "非随机",
        "design.controlled": "没有设立对照组", "design.open_label": "开放标签", "design.phase": "II期",
        "patients": "26名", "cells": "自体间充质干细胞", "tissue": "骨髓", "route": "经鞘内注射",
        "dose": "1×10⁶个细胞", "follow_up": "随访6个月", "safety": "随访6个月期间未观察到严重不良事件",
        "efficacy": "患者ALSFRS-R评分的下降速度明显减缓",
        "limitations": "作者也承认，该研究样本量较小且没有设立对照组，结论有待验证。",
    },
    "wang-2018": {
        "label": "Wang等(2018年)", "disease": "中晚期帕金森病", "stage": "中晚期", "design.randomised": "随机",
        "design.blinded": "双盲", "design.controlled": "假手术对照", "patients": "40例",
        "arms": [("细胞组", "20例"), ("对照组", "20例")], "cells": "同种异体脐带间充质干细胞", "donor": "同种异体",
        "route": "经立体定向注射", "dose": "5×10⁶个细胞", "follow_up": "术后12个月时",
        "safety": "两组不良事件的发生率相近", "efficacy": "细胞组UPDRS-III评分较对照组多改善8.5分，差异具有统计学意义",
    },
    "trial-2019": {
        "label": "次年，一项在单一儿童医院完成的随机对照I/II期试验", "disease": "痉挛型脑性瘫痪",
        "design.phase": "I/II期", "patients": "64名", "arms": [("治疗组", "32名"), ("对照组", "32名")],
        "cells": "脐带血间充质干细胞", "route": "鞘内注射", "dose": "1×10⁷个细胞/公斤", "follow_up": "随访时间为12个月",
        "safety": "治疗组仅有3名患儿出现一过性头痛", "limitations": "由于该试验为单中心设计，其结论的外推性有限。",
    },
    "tanaka-2020": {
        "label": "Tanaka et al.（2020）", "disease": "慢性创伤性脑损伤",  # said the sentence before the name
        "design.single_arm": "单臂", "patients": "18例", "route": "颅内植入", "dose": "剂量为2.5×10⁶个细胞",
        "follow_up": "为期24周的评估", "efficacy": "运动功能评分平均提高了2.3分",
        "safety": "该研究未发现与细胞相关的严重不良反应",
    },
    "trial-2022": {
        "disease": "糖尿病周围神经病变", "stage": None,  # "轻度注射部位反应" is not the disease's stage
        "design.phase": "III期", "design.controlled": "安慰剂对照", "patients": "120例",
        "cells": "同种异体胎盘来源间充质干细胞", "route": "肌肉注射", "safety": "治疗相关不良事件均为轻度注射部位反应",
    },
}


def records(path: Path) -> tuple[str, list[Study]]:
    text = path.read_text(encoding="utf-8")
    doc = load_document(path.name, text, structure_rules(Settings(embedding_model="hash-test")))
    return text, extract(doc)


def value(study: Study, name: str):
    got = study.field(name)
    if name == "arms":
        return [(a.name.text, a.n.text) for a in got]
    return None if got is None else got.text


def all_quotes(study: Study):
    yield study.label
    for name in ("disease", "stage", "patients", "cells", "donor", "tissue", "route", "dose", "follow_up",
                 "safety", "efficacy", "limitations", "reference"):
        if getattr(study, name) is not None:
            yield getattr(study, name)
    yield from (q for q in study.design.__dict__.values() if q is not None)
    for arm in study.arms:
        yield arm.name
        yield arm.n


@pytest.mark.parametrize("path, ids", [(REVIEW, REVIEW_STUDIES), (OTHER, OTHER_STUDIES)])
def test_records_every_study_found(path, ids):
    _, studies = records(path)
    assert [s.id for s in studies] == ids


@pytest.mark.parametrize("path, expected", [(REVIEW, REVIEW_EXPECTED), (OTHER, OTHER_EXPECTED)])
def test_records_fields_match_hand_expectations(path, expected):
    _, studies = records(path)
    by_id = {s.id: s for s in studies}
    for study_id, fields in expected.items():
        for name, want in fields.items():
            assert value(by_id[study_id], name) == want, (study_id, name)


@pytest.mark.parametrize("path", [REVIEW, OTHER])
def test_records_every_span_is_the_text(path):
    text, studies = records(path)
    for study in studies:
        for quote in all_quotes(study):
            assert text[quote.start:quote.end] == quote.text
        assert study.start <= study.label.start < study.end


def test_records_years_and_authors():
    _, studies = records(REVIEW)
    assert [(s.author, s.year) for s in studies][:3] == [("Bang", 2005), ("Levy", 2019), ("Chung", 2021)]
    _, other = records(OTHER)
    assert {s.id: s.year for s in other}["trial-2019"] == 2019  # "次年" after a 2018 study


def test_records_a_new_study_compared_with_an_earlier_one():
    text = ("Bang等人于2005年纳入了30例急性卒中患者。\n"
            "与Bang等人(2005)不同，Lee等人(2010年)开展的随机对照试验纳入了52例慢性卒中患者。")
    studies = extract(load_document("t.txt", text, structure_rules(Settings(embedding_model="hash-test"))))
    assert [(s.id, s.patients.text) for s in studies] == [("bang-2005", "30例"), ("lee-2010", "52例")]


@pytest.mark.parametrize("text", ["", "   \n", "间充质干细胞是一类基质细胞。", "需要开展更多随机对照试验。",
                                  "Bang等人(2005)与Chung等人(2021)研究结果之间的差异可能源于多种因素。"])
def test_records_none_without_a_particular_study(text):
    doc = load_document("t.txt", text, structure_rules(Settings(embedding_model="hash-test")))
    comparisons = extract(doc)
    # A sentence naming two studies compares them; it describes neither on its own.
    assert comparisons == []


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# Lines of both documents in any order and number, with blank lines between some: study openings,
# continuations, titles, headings and reference entries meet in orders neither document has.
_ANY_LINES = st.lists(st.sampled_from(_lines(REVIEW) + _lines(OTHER) + [""]), max_size=25).map("\n".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ANY_LINES)
def test_records_spans_exact_for_any_arrangement(text):
    doc = load_document("t.txt", text, structure_rules(Settings(embedding_model="hash-test")))
    studies = extract(doc)
    assert len({s.id for s in studies}) == len(studies)
    for study in studies:
        for quote in all_quotes(study):
            assert text[quote.start:quote.end] == quote.text and quote.text.strip()
