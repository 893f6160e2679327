"""Structural checks for the hand-written gold QA set (eval/gold.jsonl).

Fast and model-free: only reads the gold file, the corpus document and the
small fixtures in tests/data/ (the documents behind the `deleted` kind).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLD_PATH = ROOT / "eval" / "gold.jsonl"
CORPUS_PATH = ROOT / "corpus" / "msc-neuro-review.zh.txt"
DATA_DIR = ROOT / "tests" / "data"
DELETED_TOPICS_PATH = DATA_DIR / "deleted-topics.json"

# Kinds the assistant must decline ("the documents do not say"); every other
# kind is answerable from the review.
UNANSWERABLE_KINDS = {
    "unanswerable",
    "chitchat",
    "general",
    "offtopic-en",
    "offtopic-zh",
    "absent-detail",
    "deleted",
}
ALLOWED_KINDS = {
    "factoid",
    "why",
    "comparison",
    "paraphrase",
    "english",
    "multiturn",
    "claim",
    "short",  # a new user's first questions: a few words naming a study
} | UNANSWERABLE_KINDS
# The questions the issue quotes from new users; they must stay in the set.
REQUIRED_QUESTIONS = {
    "chitchat": ["谢谢", "今天天气怎么样？"],
    "general": ["什么是量子计算？"],
    "offtopic-en": [
        "What is the capital of France?",
        "Does MSC therapy work for Parkinson's disease?",
    ],
}
# Words that mark each deleted-topic document and must not occur in the review,
# so that after deletion nothing left in the corpus answers its questions.
DELETED_DOC_TERMS = {
    "deleted-topic-1.zh.txt": ["糖尿病足", "趾甲", "敷料"],
    "deleted-topic-2.zh.txt": ["茶叶", "普洱", "乌龙茶"],
}
MIN_ITEMS = 60
MIN_PER_KIND = 5
REQUIRED_FIELDS = {
    "id": str,
    "kind": str,
    "question": str,
    "answerable": bool,
    "answer": str,
    "key_facts": list,
    "evidence": list,
}
NON_CITABLE_MARKER = "免责说明"


def _read_lines() -> list[str]:
    text = GOLD_PATH.read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line.strip()]


def _load_items() -> list[dict]:
    return [json.loads(line) for line in _read_lines()]


def _split_corpus() -> tuple[str, str, list[str]]:
    """Return (citable head, non-citable tail, citable paragraphs).

    Everything from the first line starting with 免责说明 (the reposting
    site's disclaimer) onwards is not citable.
    """
    text = CORPUS_PATH.read_text(encoding="utf-8")
    lines = text.split("\n")
    cut = next(
        (i for i, line in enumerate(lines) if line.startswith(NON_CITABLE_MARKER)),
        len(lines),
    )
    head = "\n".join(lines[:cut])
    tail = "\n".join(lines[cut:])
    return head, tail, lines[:cut]


ITEMS = _load_items()
HEAD, TAIL, PARAGRAPHS = _split_corpus()
ANSWERABLE = [it for it in ITEMS if it.get("answerable") is True]
UNANSWERABLE = [it for it in ITEMS if it.get("answerable") is False]
MULTITURN = [it for it in ITEMS if it.get("kind") == "multiturn"]
COMPARISON = [it for it in ITEMS if it.get("kind") == "comparison"]
DECLINED = [it for it in ITEMS if it.get("kind") in UNANSWERABLE_KINDS]
DELETED = [it for it in ITEMS if it.get("kind") == "deleted"]
DELETED_TOPICS = json.loads(DELETED_TOPICS_PATH.read_text(encoding="utf-8"))
CORPUS_TEXT = CORPUS_PATH.read_text(encoding="utf-8")


def _ids(items: list[dict]) -> list[str]:
    return [str(it.get("id")) for it in items]


def _each(items: list[dict], check) -> None:
    """Run one rule over every item and fail once, listing every item that breaks it."""
    broken = []
    for item in items:
        try:
            check(item)
        except AssertionError as exc:
            broken.append(f"{item.get('id')}: {exc}")
    assert not broken, f"{len(broken)} item(s) break the rule:\n" + "\n".join(broken)


# --------------------------------------------------------------------------
# file / schema
# --------------------------------------------------------------------------


def test_gold_file_every_line_is_json_object():
    for n, line in enumerate(_read_lines(), 1):
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {n} is not a JSON object"


def test_gold_file_is_non_ascii_escaped_utf8():
    raw = GOLD_PATH.read_text(encoding="utf-8")
    assert "\\u" not in raw, "write with ensure_ascii=False"


def test_corpus_has_non_citable_marker():
    assert TAIL.startswith(NON_CITABLE_MARKER)
    assert HEAD.strip()


def _item_has_required_fields_with_types(item):
    for field, typ in REQUIRED_FIELDS.items():
        assert field in item, f"missing {field}"
        assert isinstance(item[field], typ), f"{field} should be {typ.__name__}"
    assert item["question"].strip()
    for q in item["evidence"]:
        assert isinstance(q, str) and q.strip()
    for group in item["key_facts"]:
        assert isinstance(group, list) and group, "key-fact group must be a non-empty list"
        for alt in group:
            assert isinstance(alt, str) and alt.strip()


def test_item_has_required_fields_with_types():
    _each(ITEMS, _item_has_required_fields_with_types)


def _item_id_matches_kind_prefix(item):
    assert item["id"].startswith(item["kind"] + "-")


def test_item_id_matches_kind_prefix():
    _each(ITEMS, _item_id_matches_kind_prefix)


def _item_id_is_kind_and_two_digit_number(item):
    assert re.fullmatch(re.escape(item["kind"]) + r"-\d{2}", item["id"])


def test_item_id_is_kind_and_two_digit_number():
    _each(ITEMS, _item_id_is_kind_and_two_digit_number)


def test_ids_are_unique():
    dupes = [i for i, n in Counter(_ids(ITEMS)).items() if n > 1]
    assert not dupes, f"duplicate ids: {dupes}"


def test_questions_are_unique():
    dupes = [q for q, n in Counter(it["question"] for it in ITEMS).items() if n > 1]
    assert not dupes, f"duplicate questions: {dupes}"


def test_kinds_are_from_allowed_set():
    unknown = {it["kind"] for it in ITEMS} - ALLOWED_KINDS
    assert not unknown, f"unknown kinds: {unknown}"


def test_unanswerable_kinds_are_allowed_kinds():
    assert UNANSWERABLE_KINDS <= ALLOWED_KINDS


def test_kinds_each_have_min_items():
    counts = Counter(it["kind"] for it in ITEMS)
    short = {k: counts.get(k, 0) for k in ALLOWED_KINDS if counts.get(k, 0) < MIN_PER_KIND}
    assert not short, f"kinds with fewer than {MIN_PER_KIND} items: {short}"


def test_gold_has_min_items():
    assert len(ITEMS) >= MIN_ITEMS


# --------------------------------------------------------------------------
# evidence
# --------------------------------------------------------------------------


def _evidence_quotes_occur_in_citable_corpus(item):
    for q in item["evidence"]:
        assert q in HEAD, f"quote not found verbatim in citable text: {q!r}"


def test_evidence_quotes_occur_in_citable_corpus():
    _each(ITEMS, _evidence_quotes_occur_in_citable_corpus)


def _evidence_quotes_absent_from_noncitable_tail(item):
    for q in item["evidence"]:
        assert q not in TAIL, f"quote occurs in the non-citable tail: {q!r}"


def test_evidence_quotes_absent_from_noncitable_tail():
    _each(ITEMS, _evidence_quotes_absent_from_noncitable_tail)


def _answerable_item_has_evidence_key_facts_and_answer(item):
    assert len(item["evidence"]) >= 1
    assert 1 <= len(item["key_facts"]) <= 4
    assert item["answer"].strip()


def test_answerable_item_has_evidence_key_facts_and_answer():
    _each(ANSWERABLE, _answerable_item_has_evidence_key_facts_and_answer)


def _unanswerable_item_has_no_evidence_or_key_facts(item):
    assert item["kind"] in UNANSWERABLE_KINDS
    assert item["evidence"] == []
    assert item["key_facts"] == []
    assert item["answer"] == ""


def test_unanswerable_item_has_no_evidence_or_key_facts():
    _each(UNANSWERABLE, _unanswerable_item_has_no_evidence_or_key_facts)


def _unanswerable_kinds_item_is_declined(item):
    assert item["answerable"] is False
    assert item["evidence"] == []
    assert item["key_facts"] == []
    assert item["answer"] == ""


def test_unanswerable_kinds_item_is_declined():
    _each(DECLINED, _unanswerable_kinds_item_is_declined)


def test_unanswerable_kinds_are_marked_not_answerable():
    wrong = [it["id"] for it in ITEMS if it["kind"] in UNANSWERABLE_KINDS and it["answerable"]]
    assert not wrong


def test_other_kinds_are_answerable():
    wrong = [
        it["id"] for it in ITEMS
        if it["kind"] not in UNANSWERABLE_KINDS and it["answerable"] is not True
    ]
    assert not wrong


def _key_fact_groups_supported_by_evidence(item):
    joined = "\n".join(item["evidence"])
    for group in item["key_facts"]:
        assert any(alt in joined for alt in group), f"no alternative of {group} in evidence"


def test_key_fact_groups_supported_by_evidence():
    _each(ANSWERABLE, _key_fact_groups_supported_by_evidence)


def _key_fact_groups_present_in_reference_answer(item):
    for group in item["key_facts"]:
        assert any(alt in item["answer"] for alt in group), f"no alternative of {group} in answer"


def test_key_fact_groups_present_in_reference_answer():
    _each(ANSWERABLE, _key_fact_groups_present_in_reference_answer)


def _comparison_evidence_spans_two_paragraphs(item):
    assert len(item["evidence"]) >= 2
    paras = {
        i for q in item["evidence"] for i, p in enumerate(PARAGRAPHS) if q in p
    }
    assert len(paras) >= 2, "comparison evidence must come from different paragraphs"


def test_comparison_evidence_spans_two_paragraphs():
    _each(COMPARISON, _comparison_evidence_spans_two_paragraphs)


# --------------------------------------------------------------------------
# multiturn
# --------------------------------------------------------------------------


def _multiturn_history_alternates_starting_with_user(item):
    history = item.get("history")
    assert isinstance(history, list) and history, "history must be a non-empty list"
    for n, turn in enumerate(history):
        assert isinstance(turn, dict)
        assert set(turn) == {"role", "content"}
        assert turn["role"] == ("user" if n % 2 == 0 else "assistant")
        assert isinstance(turn["content"], str) and turn["content"].strip()


def test_multiturn_history_alternates_starting_with_user():
    _each(MULTITURN, _multiturn_history_alternates_starting_with_user)


def test_history_only_on_multiturn_items():
    extra = [it["id"] for it in ITEMS if it["kind"] != "multiturn" and "history" in it]
    assert not extra, f"non-multiturn items with history: {extra}"


# --------------------------------------------------------------------------
# unanswerable kinds
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(REQUIRED_QUESTIONS))
def test_required_questions_present(kind):
    have = {it["question"] for it in ITEMS if it["kind"] == kind}
    missing = [q for q in REQUIRED_QUESTIONS[kind] if q not in have]
    assert not missing, f"{kind} lacks {missing}"


def test_corpus_does_not_cover_parkinsons():
    # offtopic-en relies on it ("Does MSC therapy work for Parkinson's disease?")
    for term in ("帕金森", "Parkinson"):
        assert term not in CORPUS_TEXT


# --------------------------------------------------------------------------
# deleted documents (tests/data/)
# --------------------------------------------------------------------------


def test_deleted_topics_file_matches_deleted_items():
    assert isinstance(DELETED_TOPICS, list) and DELETED_TOPICS
    for rec in DELETED_TOPICS:
        assert set(rec) == {"document", "question", "answer_quote"}
        assert all(isinstance(v, str) and v.strip() for v in rec.values())
    questions = [rec["question"] for rec in DELETED_TOPICS]
    assert len(questions) == len(set(questions)), "duplicate question in deleted-topics.json"
    assert set(questions) == {it["question"] for it in DELETED}
    assert {rec["document"] for rec in DELETED_TOPICS} == set(DELETED_DOC_TERMS)


@pytest.mark.parametrize(
    "rec", DELETED_TOPICS, ids=[rec["question"] for rec in DELETED_TOPICS]
)
def test_deleted_answer_quote_in_document_not_in_review(rec):
    doc = (DATA_DIR / rec["document"]).read_text(encoding="utf-8")
    assert rec["answer_quote"] in doc
    assert rec["answer_quote"] not in CORPUS_TEXT


@pytest.mark.parametrize("document", sorted(DELETED_DOC_TERMS))
def test_deleted_document_terms_absent_from_review(document):
    doc = (DATA_DIR / document).read_text(encoding="utf-8")
    assert 600 <= len("".join(doc.split())) <= 900, "document should be 600-900 characters"
    for term in DELETED_DOC_TERMS[document]:
        assert term in doc, f"{term} not in {document}"
        assert term not in CORPUS_TEXT, f"{term} occurs in the review"
