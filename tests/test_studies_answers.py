"""Study catalogue, exports and answers from the records (rag.studies), on the real review text
without a model: filters, unique ids, expected export files, and what each kind of question gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import BadFilter, StudyNotFound
from rag.indexing.index import structure_rules
from rag.ingest.corpus import load_document
from rag.studies import answers, catalogue, export
from rag.studies.questions import parse

ROOT = Path(__file__).resolve().parent.parent
REVIEW = ROOT / "corpus" / "msc-neuro-review.zh.txt"
OTHER = ROOT / "tests" / "data" / "studies-other.zh.txt"
DATA = ROOT / "tests" / "data"
RULES = structure_rules(Settings(embedding_model="hash-test"))
CHUNG = [{"role": "user", "content": "Chung等人2021年的研究是怎么做的？"}, {"role": "assistant", "content": "一项随机试验。"}]
BANG = [{"role": "user", "content": "Bang等人2005年的研究是怎么做的？"}, {"role": "assistant", "content": "30例急性卒中。"}]


@pytest.fixture(scope="module")
def review():
    return load_document(REVIEW.name, REVIEW.read_text(encoding="utf-8"), RULES)


@pytest.fixture(scope="module")
def studies(review):
    return catalogue.studies_of([review])


def ask(question, review, studies, history=()):
    asked = parse(question, list(history), studies)
    assert asked is not None, question
    got = answers.answer(question, asked, {review.doc_id: review})
    for c in got.citations:
        assert review.text[c.start:c.end] == c.text
    assert {int(n) for n in __import__("re").findall(r"\[(\d+)\]", got.answer)} == {c.n for c in got.citations}
    return got


def test_catalogue_filters(studies):
    ids = lambda found: [s.id for s in found]  # noqa: E731
    assert ids(catalogue.matching(studies, disease="阿尔茨海默病")) == ["kim-2021", "xie-2023"]
    assert ids(catalogue.matching(studies, design="randomised")) == ["chung-2021", "trial-2024"]
    # Macêdo "缺乏随机化设计" states the trait's absence: not randomised.
    assert "macedo-2024" not in ids(catalogue.matching(studies, design="随机"))
    assert ids(catalogue.matching(studies, design="单臂")) == ["trial-2024-3"]
    assert ids(catalogue.matching(studies, design="I/II期")) == ["levy-2019", "xie-2023"]
    assert ids(catalogue.matching(studies, year=2024)) == ["trial-2024", "macedo-2024", "trial-2024-2", "trial-2024-3"]
    assert catalogue.matching(studies, disease="帕金森病") == []


def test_catalogue_bad_filter_and_unknown_id(studies):
    with pytest.raises(BadFilter, match="unknown design"):
        catalogue.matching(studies, design="cheap")
    with pytest.raises(StudyNotFound):
        catalogue.find(studies, "nobody-1999")


def test_catalogue_ids_unique_across_documents_and_memoised(review):
    memo: dict = {}
    copy = load_document("copy.txt", review.text, RULES)
    both = catalogue.studies_of([review, copy], memo)
    assert len({s.id for s in both}) == len(both) == 18
    assert [s.id for s in both if s.doc_id == "copy.txt"][0] == "bang-2005-2"
    assert len(memo) == 2  # one entry per document: a changed document re-derives only its own


def test_export_csv_and_markdown_match_expected_files(studies):
    assert export.to_csv(studies) == (DATA / "studies-review.csv").read_text(encoding="utf-8")
    assert export.to_markdown(studies) == (DATA / "studies-review.md").read_text(encoding="utf-8")


def test_export_json_cells_carry_citations(studies):
    rows = export.to_json(studies)
    bang = rows[0]
    assert bang["dose"] == {"text": "1×10⁸个细胞", "start": bang["dose"]["start"], "end": bang["dose"]["end"],
                            "citation": f"msc-neuro-review.zh.txt#{bang['dose']['start']}-{bang['dose']['end']}"}
    assert bang["follow_up"] is None
    assert rows[2]["design"]["randomised"]["text"] == "随机"


def test_answer_contrast_leads_with_the_reason(review, studies):
    got = ask("为什么Bang和Chung的研究结论不一致？", review, studies)
    assert got.answer.startswith("文档给出的原因：这些结果的差异可能源于患者病程(亚急性与慢性)、细胞剂量、培养方案及评估标准的不同")
    assert got.short_answer.text == "这些结果的差异可能源于患者病程(亚急性与慢性)、细胞剂量、培养方案及评估标准的不同"
    # Each value is cited by the sentence it stands in: Bang's opening sentence, Chung's two.
    starts = ["这些结果的差异可能源于", "Bang等人于2005年开展", "该研究在实验组", "然而,Chung等人"]
    assert len(got.citations) == 4 and all(c.text.startswith(w) for c, w in zip(got.citations, starts))
    rows = {r.field: [[c.text for c in cell] for cell in r.cells] for r in got.table.rows}
    assert rows["病程/分期"] == [["急性"], ["慢性"]]
    assert rows["随机"] == [[], ["随机"]]
    assert rows["对照"] == [[], ["对照组(15例患者)"]]
    assert rows["患者人数"] == [["30例"], ["实验组(39例患者)", "对照组(15例患者)"]]
    assert "来源(自体/异体)" not in rows  # both autologous: a contrast shows only differences
    assert "- 随机：Bang等人于2005年：文档未给出；Chung等人于2021年：随机[4]" in got.answer
    assert "Chung等人于2021年：实验组(39例患者) 对照组(15例患者)[3]" in got.answer
    assert got.table.studies == ["bang-2005", "chung-2021"]


def test_answer_contrast_in_english(review, studies):
    got = ask("Why do Bang and Chung disagree?", review, studies)
    assert got.answer.startswith("The document's reason: 这些结果的差异可能源于")
    assert [r.field for r in got.table.rows][:4] == ["disease", "stage", "randomised", "control"]


def test_answer_compare_the_asked_field(review, studies):
    got = ask("比较Kim和Xie的剂量", review, studies)
    assert [r.field for r in got.table.rows] == ["剂量"]
    assert got.table.rows[0].cells[1][0].text == "不同剂量(2×10⁸、4×10⁸和8×10⁸个颗粒)"


def test_answer_lists_studies_of_a_disease(review, studies):
    got = ask("哪些研究针对阿尔茨海默病？分别用了什么治疗？", review, studies)
    assert got.table.studies == ["kim-2021", "xie-2023"]
    assert [r.field for r in got.table.rows] == ["细胞/产品", "给药途径", "剂量"]
    assert got.answer.startswith("文档中有2项：Kim等人(2021年)[1]、Xie等人(2023年)[2]。")


def test_answer_follow_ups_use_the_conversations_study(review, studies):
    control = ask("那对照组有多少人？", review, studies, CHUNG)
    assert control.answer == "对照组(15例患者)[1]（Chung等人于2021年）。" and control.short_answer.text == "对照组(15例患者)"
    assert ask("随访了多久？", review, studies, CHUNG).answer == "90天时的临床结局[1]（Chung等人于2021年）。"
    # Bang's record has neither: the answer says so, and never borrows Chung's numbers.
    missing = ask("那对照组有多少人？", review, studies, BANG)
    assert missing.answer == "文档未给出Bang等人于2005年这项研究的对照组人数[1]。" and missing.short_answer is None
    assert missing.citations[0].text.startswith("Bang等人于2005年开展的一项研究")
    assert ask("随访了多久？", review, studies, BANG).answer == "文档未给出Bang等人于2005年这项研究的随访[1]。"


def test_a_count_asked_of_one_named_study_comes_from_its_record(review, studies):
    # Macêdo's "6例" sits sentences after its name, past a reference title: retrieval misses it.
    macedo = ask("Macêdo的研究有几例患者？", review, studies)
    assert macedo.answer == "6例[1]（Macêdo等人(2024年)）。" and macedo.short_answer.text == "6例"
    assert "样本量仅为6例" in macedo.citations[0].text
    assert ask("Levy等人纳入了多少例患者？", review, studies).short_answer.text == "36例"


@pytest.mark.parametrize("question, history", [
    ("Bang等人2005年的研究中输注了多少细胞？", []),  # one named study: the ordinary answer path
    # A count and a dose: the record answers only half of it.
    ("Kim等人2021年的阿尔茨海默病试验里，高剂量组有几例患者？每次给多少细胞？", []),
    # A count and a time the record does not hold (Levy's follow-up is not stated).
    ("Levy等人2019年的试验纳入了多少例慢性卒中患者？他们平均在卒中后多久接受治疗？", []),
    ("What kind of stroke did the patients in Bang et al. (2005) have?", []),  # names patients, asks no number
    ("为什么静脉输注MSCs后只有很少的细胞能到达靶组织？", []),
    ("MSC来源外泌体治疗创伤性脑损伤的临床研究有哪些？", []),  # no record of that disease
    ("那疗效能确定吗？", BANG),  # needs more than a field
    ("第一次是怎么把细胞打进去的？", BANG),
    ("那剂量是多少？", BANG),  # a dose follow-up: the ordinary answer's short answer finds the figure
    ("随访了多久？", []),
])
def test_answer_other_questions_left_alone(question, history, studies):
    assert parse(question, history, studies) is None


def test_catalogue_re_derives_only_changed_documents_and_drops_removed_ones(review, monkeypatch):
    calls = []
    real = catalogue.extract
    monkeypatch.setattr(catalogue, "extract", lambda doc: calls.append(doc.doc_id) or real(doc))
    monkeypatch.setattr(catalogue, "_BY_DOCUMENT", {})
    docs = [load_document(f"d{k}.txt", review.text, RULES) for k in range(3)]
    catalogue.studies_of(docs)
    assert calls == ["d0.txt", "d1.txt", "d2.txt"]
    changed = load_document("d1.txt", review.text + "\n补充说明。\n", RULES)
    catalogue.studies_of([docs[0], changed])  # d1 changed, d2 removed
    assert calls[3:] == ["d1.txt"]
    assert {key[1] for key in catalogue._BY_DOCUMENT} == {"d0.txt", "d1.txt"}
