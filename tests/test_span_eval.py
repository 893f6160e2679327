"""CMRC-style span metrics and the suite's fixed halves (no model)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rag.quality.cmrc import DEFAULT_PATH, SpanItem, answering_sentences, load_items, read_squad, write_corpus
from rag.quality.halves import half_of
from rag.quality.span_eval import bad_citations, char_f1, exact_match, holds_answer, normalise, summarize


def test_normalise_drops_punctuation_and_spaces():
    assert normalise("1,000 米。") == "1000米"


def test_exact_match_and_f1_take_the_best_gold():
    assert exact_match("1,000米", ["一千米", "1000米"]) == 1.0
    assert char_f1("8公斤", ["约只有8公斤重"]) == pytest.approx(2 * 1.0 * (3 / 7) / (1 + 3 / 7))
    assert char_f1("", ["x"]) == 0.0 and exact_match("", [""]) == 0.0


ITEM = SpanItem("q1", "全长多少？", "a.txt", (("1122米", 9),), "fit")


def test_holds_answer_needs_the_own_document_and_the_gold_span():
    source = "东关街全长为街道，全长1122米，宽约5米。"
    assert holds_answer(("a.txt", 0, len(source), source), ITEM, source)
    assert not holds_answer(("b.txt", 0, len(source), source), ITEM, source)
    assert not holds_answer(("a.txt", 0, 8, source[:8]), ITEM, source)


def _cite(doc, start, end, text):
    return SimpleNamespace(doc_id=doc, start=start, end=end, text=text)


def test_bad_citations_counts_inexact_quotes_and_stray_short_answers():
    docs = {"a.txt": SimpleNamespace(text="东关街全长1122米。")}
    good = _cite("a.txt", 0, 11, "东关街全长1122米。")
    short = SimpleNamespace(doc_id="a.txt", start=5, end=10, text="1122米")
    assert bad_citations(SimpleNamespace(citations=[good], short_answer=short), docs) == 0
    wrong = _cite("a.txt", 0, 3, "西关街")
    assert bad_citations(SimpleNamespace(citations=[wrong], short_answer=None), docs) == 1
    outside = SimpleNamespace(doc_id="a.txt", start=0, end=3, text="东关街")
    assert bad_citations(SimpleNamespace(citations=[_cite("a.txt", 5, 11, "1122米。")], short_answer=outside), docs) == 1


def test_summarize_reports_halves_and_counts_bad_citations():
    rows = [{"half": h, **{m: v for m in ("doc@1", "ans@1", "ans@cite", "search@5", "short_em", "short_f1",
                                            "short_given", "abstained")}, "bad_citations": b}
            for h, v, b in (("fit", 1.0, 0.0), ("held", 0.0, 1.0))]
    summary = summarize(rows)
    assert summary["overall"]["ans@1"] == 0.5 and summary["overall"]["bad_citations"] == 1
    assert set(summary["by_kind"]) == {"fit", "held"}


def test_halves_are_fixed_and_both_used():
    assert half_of("TRIAL_800") == half_of("TRIAL_800")
    assert {half_of(f"TRIAL_{i}") for i in range(20)} == {"fit", "held"}


def test_cmrc_items_skip_empty_questions_and_corpus_is_written_exactly(tmp_path):
    items = load_items()
    assert len(items) == 1000 and all(i.question.strip() for i in items)
    folder = write_corpus(__import__("rag.quality.cmrc", fromlist=["DEFAULT_PATH"]).DEFAULT_PATH, tmp_path / "c")
    (folder / "stale.txt").write_text("old", encoding="utf-8")
    write_corpus(__import__("rag.quality.cmrc", fromlist=["DEFAULT_PATH"]).DEFAULT_PATH, folder)
    assert not (folder / "stale.txt").exists() and len(list(folder.glob("*.txt"))) == 256
    item = items[0]
    text = (folder / item.doc_id).read_text(encoding="utf-8")
    answer, at = item.answers[0]
    assert text[at:at + len(answer)] == answer


def test_answering_sentences_are_sentences_of_the_own_paragraph_where_the_answer_starts():
    texts = {f"{p['id']}.txt": p["context"] for p in read_squad(DEFAULT_PATH)}
    pairs = list(answering_sentences())
    assert len(pairs) >= 990  # a few answers start outside every sentence (in a heading or between them)
    for item, sentence in pairs:
        text, (answer, at) = texts[item.doc_id], item.answers[0]
        begins = text.find(sentence)
        assert begins >= 0 and begins <= at < begins + len(sentence)
        assert sentence.strip() and "\n" not in sentence.strip()
