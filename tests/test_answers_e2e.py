"""End to end on the real review: real e5 model, real FAISS and BM25 index, extractive answers."""

from __future__ import annotations

import re

import pytest

from rag.langchain_edge import answer_chain, retriever

pytestmark = pytest.mark.slow

# A dozen questions and a phrase of the sentence that answers each.
KNOWN = [
    ("Bang等人2005年的研究输注了多少细胞？", "1×10⁸个细胞"),
    ("Levy等人的试验纳入了多少例慢性卒中患者？", "36例慢性卒中患者"),
    ("Chung等人的随机试验对照组有多少例患者？", "并设对照组(15例患者)"),
    ("Bang和Chung结果差异的原因是什么？", "培养方案及评估标准的不同"),
    ("进展型多发性硬化症的II期试验用的是什么细胞？", "神经祖细胞(NPs)"),
    ("Macêdo的研究为什么无法得出明确结论？", "样本量仅为6例"),
    ("脂肪来源MSCs鞘内输注后有几例患者AIS分级改善？", "7例患者的美国脊髓损伤协会损伤量表"),
    ("Kim等人的试验高剂量组每次给多少细胞？", "3.0×10⁷个细胞/2mL"),
    ("脑室注射hUCB-MSCs后为什么会发热？", "培养液及血清成分的免疫应答"),
    ("外泌体哪个剂量组认知改善最显著？", "中等剂量组(4×10⁸颗粒)"),
    ("静脉输注后为什么只有少量细胞到达靶组织？", "归巢受体表达不足"),
    ("MSCs有哪些致癌风险？", "恶性转化"),
]


def _retrieved_texts(pipeline, question, k=5):
    result = pipeline.retrieve(question, top_k=k)
    return [pipeline.index.chunk_text(h.chunk) for h in result.hits]


@pytest.mark.parametrize("question,phrase", KNOWN)
def test_retrieval_known_question_finds_its_sentence_in_top5(real_pipeline, question, phrase):
    assert any(phrase in text for text in _retrieved_texts(real_pipeline, question))


def _check_citations(pipeline, answer):
    """Every citation quotes its document exactly, and every marker points at a citation."""
    numbers = {c.n for c in answer.citations}
    for c in answer.citations:
        assert pipeline.index.documents[c.doc_id].text[c.start:c.end] == c.text
        assert f"[{c.n}]" in answer.answer
    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)} == numbers


def test_answer_bang_chung_cites_the_reason_and_each_finding(real_pipeline):
    answer = real_pipeline.ask("为什么Bang和Chung的研究结论不一致？")
    assert answer.answerable
    _check_citations(real_pipeline, answer)
    texts = [c.text for c in answer.citations]
    reason = [t for t in texts if all(w in t for w in ("患者病程", "细胞剂量", "培养方案", "评估标准"))]
    assert reason, texts
    assert any("Bang等人于2005年" in t and "改善" in t for t in texts)  # what Bang found
    assert any("未能证明自体MSCs能改善" in t for t in texts)  # what Chung found
    assert all(c.section == "间充质干细胞治疗中风的临床案例" for c in answer.citations)


def test_answer_without_support_in_corpus_abstains(real_pipeline):
    answer = real_pipeline.ask("MSC治疗肌萎缩侧索硬化的临床效果如何？")
    assert answer.answerable is False
    assert answer.citations == []
    assert "没有" in answer.answer


def test_answer_single_fact_is_short_and_cited(real_pipeline):
    answer = real_pipeline.ask("Xie等人的外泌体试验随访到第几周？")
    assert answer.answerable
    _check_citations(real_pipeline, answer)
    assert "第48周" in answer.answer
    assert len(answer.citations) <= 2


def test_answer_english_question_gets_chinese_passages_framed_in_english(real_pipeline):
    answer = real_pipeline.ask("How many patients did Levy et al. treat in their 2019 trial?")
    assert answer.answerable
    assert answer.answer.startswith("The documents (in Chinese) say:")
    _check_citations(real_pipeline, answer)
    assert any("36例慢性卒中患者" in c.text for c in answer.citations)


def test_answer_english_unanswerable_abstains_in_english(real_pipeline):
    answer = real_pipeline.ask("What did the phase III trial of MSCs in Parkinson's disease find?")
    assert not answer.answerable
    assert answer.answer == "The documents do not answer this question."


def test_answer_follow_up_uses_the_conversation(real_pipeline):
    history = [
        {"role": "user", "content": "Levy等人2019年的卒中试验是怎么做的？"},
        {"role": "assistant", "content": "36例慢性卒中患者接受了一次同种异体骨髓来源MSCs输注。"},
    ]
    answer = real_pipeline.ask("那剂量是多少？", history=history)
    assert answer.answerable
    assert answer.retrieval_query and "Levy" in answer.retrieval_query
    assert any("150万个细胞/公斤体重" in c.text for c in answer.citations)


def test_answer_reports_stage_timings(real_pipeline):
    answer = real_pipeline.ask("Kim等人的试验纳入了几例患者？")
    assert set(answer.timings_ms) == {"retrieve", "answer"}
    assert all(v >= 0 for v in answer.timings_ms.values())


def test_search_claim_returns_exact_passages_with_spans(real_pipeline):
    passages = real_pipeline.search("外泌体中等剂量组的认知改善最明显")
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
    assert "中等剂量组(4×10⁸颗粒)的认知改善最为显著" in passages[0].text
    for p in passages:
        assert real_pipeline.index.documents[p.doc_id].text[p.start:p.end] == p.text
        assert p.section


def test_langchain_retriever_returns_documents_with_metadata(real_pipeline):
    docs = retriever(real_pipeline, top_k=4).invoke("Kim等人脑室注射hUCB-MSCs")
    assert len(docs) == 4
    meta = docs[0].metadata
    assert {"id", "doc_id", "section", "start", "end", "score", "dense_score", "bm25_score"} <= set(meta)
    text = real_pipeline.index.documents[meta["doc_id"]].text
    assert text[meta["start"]:meta["end"]] == docs[0].page_content
    assert any("Kim等人" in d.page_content for d in docs)


def test_retriever_bm25_only_and_dense_only_still_rank(real_pipeline):
    for dense_weight, bm25_weight in ((0.0, 1.0), (1.0, 0.0)):
        docs = retriever(real_pipeline, top_k=5, dense_weight=dense_weight, bm25_weight=bm25_weight).invoke("Levy等人 慢性卒中 剂量")
        assert any("Levy等人" in d.page_content for d in docs)


def test_langchain_retriever_ranks_as_the_service_does(real_pipeline):
    question = "外泌体哪个剂量组认知改善最显著？"
    ids = [d.metadata["id"] for d in retriever(real_pipeline).invoke(question)]
    assert ids == [p.id for p in real_pipeline.search(question)]


def test_langchain_answer_chain_composes_with_other_runnables(real_pipeline):
    chain = answer_chain(real_pipeline) | (lambda a: a["short_answer"]["text"] if a["short_answer"] else a["answer"])
    assert chain.invoke("Kim等人的试验纳入了几例患者？") == "9例"
    history = [{"role": "user", "content": "Levy等人2019年的卒中试验是怎么做的？"}]
    answer = answer_chain(real_pipeline).invoke({"question": "那剂量是多少？", "history": history})
    assert answer["short_answer"]["text"] == "150万个细胞/公斤体重" and answer["citations"]
    assert [a["answerable"] for a in answer_chain(real_pipeline).batch(["谢谢", "Bang等人输注了多少细胞？"])] == [False, True]


def test_service_hot_path_imports_no_langchain():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import rag.pipeline, api.app"],
                         capture_output=True, text=True, timeout=120).stderr
    assert "langchain" not in out


def test_readme_langchain_example_runs(real_pipeline, monkeypatch, capsys):
    from pathlib import Path

    from rag.pipeline import Pipeline

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- langchain-example")[1].split("```python\n")[1].split("```")[0]
    monkeypatch.setattr(Pipeline, "open", classmethod(lambda cls, settings, progress=True: real_pipeline))
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("msc-neuro-review.zh.txt ") and printed[1] == "9例"
    assert printed[2].startswith("150万个细胞/公斤体重 [1")
