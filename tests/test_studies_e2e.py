"""Study answers through the real server (real model, real index, uvicorn on loopback): the Bang/Chung
contrast led by the review's reason, every cell an exact span cited by its sentence; follow-ups on the
conversation's study; /studies and its exports."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from rag.service import Assistant
from tests.conftest import CORPUS
from tests.servers import ServerThread

pytestmark = pytest.mark.slow
REVIEW_TEXT = (CORPUS / "msc-neuro-review.zh.txt").read_text(encoding="utf-8")
DATA = CORPUS.parent / "tests" / "data"
CHUNG = [{"role": "user", "content": "Chung等人2021年的随机试验是怎么做的？"},
         {"role": "assistant", "content": "该研究在实验组中使用自体MSCs静脉注射治疗缺血性卒中，并设对照组。"}]
BANG = [{"role": "user", "content": "Bang等人2005年的研究是怎么做的？"},
        {"role": "assistant", "content": "30例急性缺血性卒中患者静脉输注自体骨髓MSCs。"}]


@pytest.fixture(scope="module")
def client(real_pipeline):
    with ServerThread(create_app(assistant=Assistant(real_pipeline))) as server:
        with httpx.Client(base_url=server.base_url, timeout=60) as c:
            yield c


def ask(client, question, history=()):
    got = client.post("/ask", json={"question": question, "history": list(history)})
    assert got.status_code == 200
    answer = got.json()
    for c in answer["citations"]:
        assert REVIEW_TEXT[c["start"]:c["end"]] == c["text"]
        assert f"[{c['n']}]" in answer["answer"]
    return answer


def test_contrast_bang_chung_reason_first_then_cited_cells(client):
    answer = ask(client, "为什么Bang和Chung的研究结论不一致？")
    reason = answer["citations"][0]["text"]
    assert answer["answer"].startswith("文档给出的原因：" + reason + "[1]")
    assert all(w in reason for w in ("患者病程", "细胞剂量", "培养方案", "评估标准"))
    table = answer["table"]
    assert table["studies"] == ["bang-2005", "chung-2021"] and table["labels"] == ["Bang等人于2005年", "Chung等人于2021年"]
    by_n = {c["n"]: c for c in answer["citations"]}
    rows = {}
    for row in table["rows"]:
        rows[row["field"]] = [[v["text"] for v in cell] for cell in row["cells"]]
        for cell in row["cells"]:
            for v in cell:
                assert REVIEW_TEXT[v["start"]:v["end"]] == v["text"]  # the cell is the document's own text
                cited = by_n[v["n"]]
                assert cited["start"] <= v["start"] and v["end"] <= cited["end"]  # inside the sentence it cites
    assert rows["病程/分期"] == [["急性"], ["慢性"]]  # disease stage: acute vs chronic
    assert rows["随机"] == [[], ["随机"]] and rows["对照"] == [[], ["对照组(15例患者)"]]  # randomised with a control vs not
    assert rows["患者人数"] == [["30例"], ["实验组(39例患者)", "对照组(15例患者)"]]
    assert "- 随机：Bang等人于2005年：文档未给出；Chung等人于2021年：随机[" in answer["answer"]


def test_contrast_in_english(client):
    answer = ask(client, "Why do Bang and Chung disagree?")
    assert answer["answer"].startswith("The document's reason: ") and "stage" in [r["field"] for r in answer["table"]["rows"]]


def test_compare_and_list(client):
    dose = ask(client, "比较Kim和Xie的剂量")
    assert [r["field"] for r in dose["table"]["rows"]] == ["剂量"]
    listed = ask(client, "哪些研究针对阿尔茨海默病？分别用了什么治疗？")
    assert listed["table"]["studies"] == ["kim-2021", "xie-2023"]
    assert listed["table"]["rows"][0]["cells"][0][0]["text"] == "人脐带血来源的间充质干细胞(hUCB-MSCs)"


def test_follow_ups_answer_from_the_conversations_study(client):
    control = ask(client, "那对照组有多少人？", CHUNG)
    assert control["answer"] == "对照组(15例患者)[1]（Chung等人于2021年）。"
    assert ask(client, "随访了多久？", CHUNG)["answer"] == "90天时的临床结局[1]（Chung等人于2021年）。"
    # Bang's study has no control group in the review: said so, with Bang's sentence cited, not Chung's figures.
    missing = ask(client, "那对照组有多少人？", BANG)
    assert missing["answer"] == "文档未给出Bang等人于2005年这项研究的对照组人数[1]。"
    assert "15例" not in missing["answer"] and missing["citations"][0]["text"].startswith("Bang等人于2005年")


def test_studies_endpoints_and_exports(client):
    listed = client.get("/studies").json()
    assert len(listed) == 9
    assert client.get("/studies/chung-2021").json()["arms"][1]["n"]["text"] == "15例"
    assert client.get("/studies", params={"format": "csv"}).text == (DATA / "studies-review.csv").read_text(encoding="utf-8")
    assert client.get("/studies", params={"format": "markdown"}).text == (DATA / "studies-review.md").read_text(encoding="utf-8")
    assert client.get("/studies/none").status_code == 404


def test_an_index_loaded_from_disk_has_the_same_records_and_answers(real_pipeline, tmp_path):
    # A restarted server loads its index; a loaded document keeps its sentences in the index rows only.
    from rag.indexing import lifecycle
    from rag.pipeline import Pipeline
    from rag.studies.catalogue import index_studies
    from tests.conftest import private_corpus

    settings, built = private_corpus(real_pipeline, tmp_path)
    loaded = lifecycle.load(settings.index_dir)
    assert [s.id for s in index_studies(loaded)] == [s.id for s in index_studies(built)]
    assert len(index_studies(loaded)) == 9
    pipeline = Pipeline(settings, loaded, real_pipeline.embedder, real_pipeline.models)
    contrast = pipeline.ask("为什么Bang和Chung的研究结论不一致？")
    assert contrast.answer.startswith("文档给出的原因：") and contrast.table is not None
    # One study's number, stated sentences after its name, asked directly (not as a follow-up).
    macedo = pipeline.ask("Macêdo的研究有几例患者？")
    assert macedo.answerable and macedo.short_answer.text == "6例"
    assert "6例" in macedo.citations[0].text
