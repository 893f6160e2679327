"""The fast tier: answer selection, declining, scoring and the gate on a tiny corpus and the hash
embedder (no model load). The shipped sentence ranker and short-answer chooser are used as they
are; the shipped abstention rule is fitted on e5's similarities, so here it is replaced by one that
answers unless no word of the question is in the documents."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path

import pytest

from rag.quality import gate
from rag.indexing import index as index_mod
from rag.answer.abstention import AbstentionRule
from rag.answer.answer_models import load_answer_models
from rag.config import Settings
from rag.indexing.embedder import HashEmbedder
from rag.quality.evaluation import GoldItem, score_item, summarize
from rag.pipeline import Pipeline

REVIEW = """间充质干细胞治疗中风的临床案例
Bang等人于2005年开展的一项研究纳入了30例急性卒中患者,静脉输注自体骨髓来源的MSCs(1×10⁸个细胞),结果显示该疗法安全。
在更近的一项研究中,Levy等人(2019年)报道了36例慢性卒中患者接受了同种异体MSCs输注(剂量最高达150万个细胞/公斤体重)。
Bang等人(2005)与Levy等人(2019)研究结果之间的差异可能源于多种因素。
这些结果的差异可能源于患者病程、细胞剂量、培养方案及评估标准的不同。
间充质干细胞治疗卒中的安全性和疗效:一项I期临床试验
参考资料:
[1] Smith, A.; Wang, B. 间充质干细胞的旧问题与新机遇。Biologics 2025, 5, 37. https://doi.org/10.3390/x
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Pipeline:
    root = tmp_path_factory.mktemp("tiny")
    (root / "corpus").mkdir()
    (root / "corpus" / "review.txt").write_text(REVIEW, encoding="utf-8")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=root / "cache",
                        embedding_model="hash-test")
    built = index_mod.build(settings, HashEmbedder(), progress=False)
    models = replace(load_answer_models(), rule=AbstentionRule({}, bias=5.0))
    return Pipeline(settings, built, HashEmbedder(), models)


def _exact(pipeline: Pipeline, answer) -> None:
    for c in answer.citations:
        assert pipeline.index.documents[c.doc_id].text[c.start:c.end] == c.text
    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)} == {c.n for c in answer.citations}


def test_selection_leads_with_the_sentence_that_holds_the_asked_value(tiny):
    answer = tiny.ask("Levy等人的试验纳入了多少例患者？")
    assert answer.answerable and "36例" in answer.citations[0].text
    assert answer.short_answer.text == "36例" and answer.answer.startswith("36例")
    _exact(tiny, answer)


def test_selection_never_quotes_the_reference_list_or_a_title(tiny):
    answer = tiny.ask("间充质干细胞的旧问题与新机遇是什么？")
    for c in answer.citations:
        assert "doi.org" not in c.text and not c.text.startswith("[1]") and not c.text.endswith("临床试验")
    _exact(tiny, answer)


def test_selection_says_a_restated_reason_once(tiny):
    answer = tiny.ask("为什么Bang和Levy的研究结果有差异？")
    # The reason is the short answer, marked inside its quote, not said a second time before it.
    assert answer.answer.count("差异可能源于") == 1
    assert "差异可能源于" in answer.short_answer.text and answer.short_answer.text in answer.citations[0].text
    _exact(tiny, answer)


def test_question_sharing_no_word_with_the_documents_is_declined(tiny):
    for question in ("今天天气怎么样？", "What is the capital of France?"):
        answer = tiny.ask(question)
        assert not answer.answerable and answer.citations == []


def _item(**overrides) -> GoldItem:
    fields = dict(id="factoid-01", kind="factoid", question="Levy等人的试验纳入了多少例患者？", answerable=True,
                  answer="纳入36例慢性卒中患者。", key_facts=[["36例"]], evidence=["报道了36例慢性卒中患者"])
    return GoldItem(**(fields | overrides))


def test_scoring_credits_the_cited_evidence_and_key_facts(tiny):
    answer, retrieval, _ = tiny.ask_traced("Levy等人的试验纳入了多少例患者？")
    spans = [(tiny.index.chunks[h.chunk].doc_id, tiny.index.chunks[h.chunk].start, tiny.index.chunks[h.chunk].end)
             for h in retrieval.hits]
    row = score_item(_item(), tiny.index, answer, spans)
    assert row["hit@1"] == 1.0 and row["key_facts"] == 1.0 and row["citation_precision"] > 0
    wrong = score_item(_item(key_facts=[["99例"]], evidence=["Smith, A.; Wang, B."]), tiny.index, answer, spans)
    assert wrong["key_facts"] == 0.0 and wrong["hit@1"] == 0.0 and wrong["citation_precision"] == 0.0


def _summary_and_rows(tiny):
    answer, retrieval, _ = tiny.ask_traced("Levy等人的试验纳入了多少例患者？")
    spans = [(tiny.index.chunks[h.chunk].doc_id, tiny.index.chunks[h.chunk].start, tiny.index.chunks[h.chunk].end)
             for h in retrieval.hits]
    rows = [score_item(_item(), tiny.index, answer, spans)]
    return summarize(rows), rows


def test_gate_passes_an_equal_run_and_fails_a_fall_or_a_changed_fingerprint(tiny):
    summary, rows = _summary_and_rows(tiny)
    fp = {"model_id": "hash", "settings": {"top_k": 6}}
    baseline = {"fingerprint": fp, "summary": summary, "results": rows}
    assert gate.compare(baseline, summary, rows, fp).passed
    fallen = copy.deepcopy(summary)
    fallen["overall"]["key_facts"] -= 0.05
    verdict = gate.compare(baseline, fallen, rows, fp)
    assert not verdict.passed and verdict.failures == ["key_facts fell 1.0000 -> 0.9500 (tolerance 0.02)"]
    moved = gate.compare(baseline, summary, rows, {"model_id": "hash", "settings": {"top_k": 3}})
    assert not moved.passed and moved.fingerprint_changes == ["settings.top_k: 6 -> 3"]


def test_gate_lists_each_question_that_got_worse(tiny):
    summary, rows = _summary_and_rows(tiny)
    worse = [dict(rows[0], key_facts=0.0)]
    verdict = gate.compare({"fingerprint": {}, "summary": summary, "results": rows}, summary, worse, {})
    assert verdict.worse == ["factoid-01: key_facts 1.00->0.00"]


def test_chat_model_answer_cites_the_retrieved_chunks_its_markers_name(tiny):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from rag.langchain_edge import chat_answerer

    question = "Levy等人的试验纳入了多少例患者？"
    model = FakeListChatModel(responses=["Levy等人报道了36例慢性卒中患者[1]，另见[9]。"])
    pipeline = replace(tiny, answerer=chat_answerer(model))
    answer = pipeline.ask(question)
    assert answer.answerable and answer.answer == "Levy等人报道了36例慢性卒中患者[1]，另见。"
    assert answer.removed_markers == [9] and [c.n for c in answer.citations] == [1]
    top = pipeline.index.chunks[pipeline.retrieve(question).hits[0].chunk]
    assert (answer.citations[0].id, answer.citations[0].start, answer.citations[0].end) == (top.id, top.start, top.end)
    _exact(pipeline, answer)


def test_readme_chat_model_example_runs(tiny, capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- chat-model-example")[1].split("```python\n")[1].split("```")[0]
    exec(compile(block, "README.md", "exec"), {"pipeline": tiny})
    printed = capsys.readouterr().out
    assert printed.startswith("36例[1]。 [(1, 'review.txt', ")


def test_chat_model_saying_the_no_answer_text_is_an_abstention(tiny):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from rag.answer.answering import NO_ANSWER_ZH
    from rag.langchain_edge import chat_answerer

    pipeline = replace(tiny, answerer=chat_answerer(FakeListChatModel(responses=[NO_ANSWER_ZH])))
    answer = pipeline.ask("Levy等人的试验纳入了多少例患者？")
    assert not answer.answerable and answer.answer == NO_ANSWER_ZH and answer.citations == []


def test_chat_model_gets_the_numbered_passages_and_never_a_declined_question(tiny):
    from rag.answer.generative import ChatModelAnswerer

    sent: list[list[tuple[str, str]]] = []

    def chat(messages: list[tuple[str, str]]) -> str:
        sent.append(messages)
        return "36例[2]。"

    pipeline = replace(tiny, answerer=ChatModelAnswerer(chat))
    assert not pipeline.ask("今天天气怎么样？").answerable and sent == []
    answer = pipeline.ask("Levy等人的试验纳入了多少例患者？")
    [(system, _), (human, user)] = sent[0]
    assert (system, human) == ("system", "human") and '<passage n="2"' in user
    assert [c.n for c in answer.citations] == [2]
    _exact(pipeline, answer)


def test_answerability_features_see_the_asked_value_and_the_named_study(tiny):
    """A short question shares few words with its answer; what it has is the asked kind of value and
    the study it names, both in the quoted passage, and the features must say so."""
    *_, found = tiny.ask_traced("Levy等人纳入了多少例患者？")
    assert found.features["typed_answer"] == 1.0 and found.features["names_found"] == 1.0
    assert found.features["missing_type"] == 0.0
    *_, absent = tiny.ask_traced("Bang等人随访了多久？")  # the tiny review gives no follow-up time
    assert absent.features["typed_answer"] == 0.0 and absent.features["missing_type"] == 1.0
    *_, unnamed = tiny.ask_traced("Smith等人纳入了多少例患者？")  # a name the passages do not hold
    assert unnamed.features["names_found"] == 0.0
    *_, plain = tiny.ask_traced("这些结果的差异源于什么？")  # asks no kind of value, names nothing
    assert plain.features["typed_answer"] == 0.0 and plain.features["names_found"] == 0.0
