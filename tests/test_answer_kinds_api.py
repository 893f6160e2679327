"""Each kind of question a new user asks, through the real server: what it answers, what it declines.

Off-topic, chit-chat and English off-topic questions are declined; a deleted document's topic is
declined once it is gone; reference lists and captions are not quoted unless the question asks for
the documents' references (and one on a subject they lack is declined); a why question leads with the
reason and says nothing twice; a follow-up stays on its study; a factoid leads with a short answer.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from api.app import create_app
from rag.pipeline import Pipeline
from rag.service import Assistant
from tests.conftest import CORPUS, ROOT, private_corpus
from tests.servers import ServerThread

pytestmark = pytest.mark.slow
REVIEW = "msc-neuro-review.zh.txt"
REVIEW_TEXT = (CORPUS / REVIEW).read_text(encoding="utf-8")
DATA = ROOT / "tests" / "data"
DELETED = json.loads((DATA / "deleted-topics.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def client(real_pipeline):
    with ServerThread(create_app(assistant=Assistant(real_pipeline))) as s, \
            httpx.Client(base_url=s.base_url, timeout=60) as c:
        yield c


def ask(client, question: str, history: list[dict] | None = None) -> dict:
    response = client.post("/ask", json={"question": question, "history": history or []})
    assert response.status_code == 200, response.text
    return response.json()


def assert_declined(answer: dict) -> None:
    assert answer["answerable"] is False, answer["answer"]
    assert answer["citations"] == [] and answer.get("short_answer") is None
    assert answer["answer"] in ("文档中没有找到能回答这个问题的内容。", "The documents do not answer this question.")


@pytest.mark.parametrize("question", ["今天天气怎么样？", "谢谢", "你好", "你是谁？"])
def test_chit_chat_is_declined(client, question):
    assert_declined(ask(client, question))


@pytest.mark.parametrize("question", ["什么是量子计算？", "红烧肉怎么做？", "二甲双胍有哪些常见的副作用？"])
def test_off_topic_chinese_is_declined(client, question):
    assert_declined(ask(client, question))


@pytest.mark.parametrize("question", ["What is the capital of France?", "Does MSC therapy work for Parkinson's disease?"])
def test_off_topic_english_is_declined(client, question):
    answer = ask(client, question)
    assert_declined(answer)
    assert answer["answer"] == "The documents do not answer this question."


def test_english_question_naming_what_the_review_writes_in_chinese_is_answered(client):
    # "Alzheimer's" is not in the review's text, which writes 阿尔茨海默病 (found through CC-CEDICT).
    answer = ask(client, "How many Alzheimer's patients were enrolled in Kim et al.'s 2021 phase I trial?")
    assert answer["answerable"], answer["answer"]
    assert "阿尔茨海默" in answer["citations"][0]["text"] and "Kim" in answer["citations"][0]["text"]


def test_english_question_in_ordinary_words_the_review_writes_in_chinese_is_answered(client):
    # No name in it: "extracellular vesicles" and "molecules" are known through their renderings
    # (囊泡, 分子); before, the known-words check declined it outright.
    answer = ask(client, "What are extracellular vesicles, and what kinds of molecules do they carry?")
    assert answer["answerable"], answer["answer"]
    assert any("囊泡" in c["text"] for c in answer["citations"])


def test_deleted_document_topic_is_answered_then_declined(real_pipeline, tmp_path):
    settings, built = private_corpus(real_pipeline, tmp_path)
    pipeline = Pipeline(settings, built, real_pipeline.embedder, real_pipeline.models)
    case = next(d for d in DELETED if d["document"] == "deleted-topic-1.zh.txt")
    text = (DATA / case["document"]).read_bytes()
    with ServerThread(create_app(assistant=Assistant(pipeline))) as s, httpx.Client(base_url=s.base_url, timeout=120) as c:
        assert c.post("/documents", files={"file": (case["document"], text, "text/plain")}).status_code == 201
        answered = ask(c, case["question"])
        assert answered["answerable"], answered
        assert answered["citations"][0]["doc_id"] == case["document"]
        assert case["answer_quote"] in "".join(x["text"] for x in answered["citations"])
        assert c.delete(f"/documents/{case['document']}").status_code == 204
        after = ask(c, case["question"])
        assert_declined(after)


@pytest.mark.parametrize("question", [
    "间充质干细胞及其衍生物在神经系统疾病再生医学中有哪些旧问题与新机遇？",
    "基于MSC的神经再生疗法如何从旧问题转向新机遇？",
    "鞘内注射同种异体人脐带间充质干细胞来源外泌体治疗脊髓损伤的安全性如何？",
])
def test_reference_list_captions_and_titles_are_not_quoted(client, question):
    answer = ask(client, question)
    for c in answer["citations"]:
        assert "doi.org" not in c["text"] and not c["text"].startswith(("[1]", "图1", "Biologics"))
        assert not c["text"].endswith("临床试验") and not c["text"].endswith("I期试验")  # a cited work's title
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])}
    assert markers == {c["n"] for c in answer["citations"]}  # no "[1]" of a reference read as a marker


@pytest.mark.parametrize("question", ["这篇综述引用了哪些参考文献？", "这篇文章的DOI是什么？", "列出参考文献",
                                      "原文发表在哪个期刊？", "这篇文章的出处是哪里？", "What is the DOI of this review?",
                                      # who wrote it and when: its entry names the authors and the year
                                      "这篇综述是谁写的？", "综述发表于哪一年？", "Who wrote this review?"])
def test_a_question_for_the_documents_references_is_answered_by_them(client, question):
    answer = ask(client, question)
    assert answer["answerable"], answer["answer"]
    first = answer["citations"][0]["text"]  # the whole entry, though the splitter cuts it at its full stops
    assert first.startswith("[1] Akhmetzyanova") and first.endswith("doi.org/10.3390/biologics5040037"), first
    assert answer.get("short_answer") is None  # no name picked out of it as "the answer"


def test_another_documents_reference_list_answers_for_its_subject(real_pipeline, tmp_path):
    paper = ("# 针灸治疗偏头痛的随机对照试验\n\n本研究纳入了120例偏头痛患者，随机分为针灸组和假针灸组。\n\n"
             "针灸组每月头痛天数平均减少了3.2天。\n\n## 参考文献\n\n"
             "[1] 王明, 李华. 针灸治疗偏头痛的系统评价. 中国针灸, 2019, 39(5): 1-6. https://doi.org/10.13703/j.2019.05.001\n")
    settings, built = private_corpus(real_pipeline, tmp_path, {"acupuncture.md": paper})
    pipeline = Pipeline(settings, built, real_pipeline.embedder, real_pipeline.models)
    with ServerThread(create_app(assistant=Assistant(pipeline))) as s, httpx.Client(base_url=s.base_url, timeout=120) as c:
        answered = ask(c, "针灸治疗偏头痛的那篇文章引用了哪些参考文献？")
        assert answered["answerable"], answered["answer"]
        first = answered["citations"][0]
        assert first["doc_id"] == "acupuncture.md" and first["section"] == "参考文献", first
        assert first["text"] in paper and "中国针灸" in first["text"]
        assert_declined(ask(c, "推荐几篇关于量子计算的参考文献"))


@pytest.mark.parametrize("question", ["推荐几篇关于量子计算的参考文献", "What journal published the Higgs boson discovery?",
                                      "图2显示了什么？"])
def test_a_reference_the_documents_do_not_have_is_declined(client, question):
    assert_declined(ask(client, question))


def test_why_question_leads_with_the_reason_and_says_nothing_twice(client):
    answer = ask(client, "为什么Bang和Chung的研究结论不一致？")
    assert answer["answerable"]
    first = answer["citations"][0]["text"]
    assert all(w in first for w in ("患者病程", "细胞剂量", "培养方案", "评估标准")), first
    assert answer["answer"].count("差异可能源于") == 1
    sentences = [s for s in re.split(r"(?<=[。；])", re.sub(r"\[\d+\]", "", answer["answer"])) if s.strip()]
    assert len(sentences) == len(set(sentences))


def test_follow_up_answers_from_its_own_study(client):
    history = [{"role": "user", "content": "Levy等人2019年的卒中试验是怎么做的？"}]
    answer = ask(client, "那剂量是多少？", history)
    assert answer["answerable"]
    first = answer["citations"][0]["text"]
    assert "Levy" in first and "150万个细胞/公斤体重" in first
    assert "Bang" not in first  # another study's dose is never merged into this citation
    assert answer["short_answer"]["text"] == "150万个细胞/公斤体重"
    assert answer["answer"].startswith("150万个细胞/公斤体重")


@pytest.mark.parametrize("question,short", [
    ("Kim等人的试验纳入了几例患者？", "9例"),
    ("Bang等人输注了多少细胞？", "1×10⁸个细胞"),
    ("Levy等人的试验纳入了多少例患者？", "36例"),
])
def test_factoid_leads_with_an_exact_short_answer(client, question, short):
    answer = ask(client, question)
    found = answer["short_answer"]
    assert found["text"] == short and answer["answer"].startswith(short)
    assert REVIEW_TEXT[found["start"]:found["end"]] == short and found["doc_id"] == REVIEW
    first = answer["citations"][0]
    assert first["start"] <= found["start"] and found["end"] <= first["end"]  # inside its first citation


def test_why_question_short_answer_is_the_reason_inside_its_quote_said_once(client):
    answer = ask(client, "为什么Bang和Chung的研究结论不一致？")
    found, first = answer["short_answer"], answer["citations"][0]
    assert "差异可能源于" in found["text"] and first["start"] <= found["start"] and found["end"] <= first["end"]
    assert not answer["answer"].startswith(found["text"] + "——")  # the reason quote leads; nothing is said twice


def test_openai_endpoint_carries_the_short_answer(client):
    body = {"model": "zh-cited-rag", "messages": [{"role": "user", "content": "Kim等人的试验纳入了几例患者？"}]}
    reply = client.post("/v1/chat/completions", json=body).json()
    assert reply["short_answer"]["text"] == "9例"
    assert reply["choices"][0]["message"]["content"].startswith("9例")


@pytest.mark.parametrize("question", ["这篇综述的结论是什么？", "结论是什么？"])
def test_a_question_naming_a_section_is_answered_from_that_section(client, question):
    # Before: the first was declined (这篇 counted as a topic word the review never uses), the
    # second quoted "尚难以就疗效得出明确结论" from the Alzheimer's section.
    answer = ask(client, question)
    assert answer["answerable"], answer["answer"]
    assert answer["citations"][0]["section"] == "结论", answer["citations"][0]


def test_another_documents_section_is_found_by_its_heading(real_pipeline, tmp_path):
    report = ("# 社区老年人跌倒预防项目评估\n\n## 方法\n\n本项目在三个社区招募了240名65岁以上老人。"
              "评估人员在项目结束前不下结论，只记录跌倒次数。\n\n随访期为12个月。\n\n"
              "## 局限性\n\n样本只来自城市社区，农村老人的情况未知。\n\n"
              "## 结论\n\n平衡训练使跌倒次数减少了三分之一。\n\n项目值得在更多社区推广。\n")
    settings, built = private_corpus(real_pipeline, tmp_path, {"falls.md": report})
    pipeline = Pipeline(settings, built, real_pipeline.embedder, real_pipeline.models)
    with ServerThread(create_app(assistant=Assistant(pipeline))) as s, httpx.Client(base_url=s.base_url, timeout=120) as c:
        for question, section in (("这篇文章的结论是什么？", "结论"), ("局限性有哪些？", "局限性")):
            answer = ask(c, question)
            assert answer["answerable"], answer["answer"]
            assert answer["citations"][0]["section"] == section, (question, answer["citations"][0])


@pytest.mark.parametrize("question", ["MSC是什么？", "间充质干细胞是什么？", "什么是间充质干细胞？"])
def test_a_definition_question_is_answered_by_the_sentence_that_says_what_it_is(client, question):
    # Before: "MSC是什么？" quoted the homing problem ("静脉输注后,仅有极少量细胞…"), whose chunk retrieval
    # ranked first; the defining sentence was not among the retrieved ones.
    answer = ask(client, question)
    assert answer["answerable"], answer["answer"]
    assert answer["citations"][0]["text"].startswith("间充质干细胞(MSCs)是一类"), answer["citations"][0]["text"]
