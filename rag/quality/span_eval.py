"""Scoring answers against gold answer spans (the CMRC suite), with the reading-comprehension metrics.

Per question: whether the first citation is from the question's own document (doc@1) and
holds a gold answer (ans@1), whether any citation does (ans@cite), whether the top five
``/search`` passages do (search@5), exact match and character F1 of the short answer,
abstention, and citations whose text is not exactly the document's text at their span.
"""

from __future__ import annotations

import statistics
import unicodedata
from collections import Counter, defaultdict

from rag.quality.cmrc import SpanItem

SEARCH_DEPTH = 5
METRICS = ("doc@1", "ans@1", "ans@cite", "search@5", "short_em", "short_f1", "short_given", "abstained", "bad_citations")


def normalise(text: str) -> str:
    """Lower-cased text without punctuation or whitespace: ``"1,000 米。"`` -> ``"1000米"``."""
    return "".join(c for c in text.lower() if not c.isspace() and not unicodedata.category(c).startswith("P"))


def exact_match(prediction: str, golds: list[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    p = normalise(prediction)
    return float(bool(p) and any(p == normalise(g) for g in golds))


def char_f1(prediction: str, golds: list[str]) -> float:
    """Best character-level F1 of the prediction against the gold answers (normalised)."""
    p = normalise(prediction)
    best = 0.0
    for gold in golds:
        g = normalise(gold)
        common = sum((Counter(p) & Counter(g)).values())
        if common:
            precision, recall = common / len(p), common / len(g)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def holds_answer(span, item: SpanItem, source: str) -> bool:
    """Whether a cited span (doc_id, start, end, text) is from the item's document and contains a gold answer."""
    doc_id, start, end, text = span
    if doc_id != item.doc_id:
        return False
    for answer, at in item.answers:
        covered = start <= at and at + len(answer) <= end and source[at:at + len(answer)] == answer
        if covered or answer in text:  # a few gold offsets are off; the text itself still counts
            return True
    return False


def score(item: SpanItem, answer, passages, documents: dict) -> dict:
    """Every metric of one question, from its answer and its ``/search`` passages (best first)."""
    source = documents[item.doc_id].text
    cited = [(c.doc_id, c.start, c.end, c.text) for c in answer.citations]
    golds = [a for a, _ in item.answers]
    short = answer.short_answer.text if answer.answerable and answer.short_answer else ""
    return {
        "id": item.id,
        "half": item.half,
        "question": item.question,
        "gold": golds[0],
        "answer": answer.answer,
        "short_answer": short or None,
        "first_doc": cited[0][0] if cited else None,
        "doc@1": float(bool(cited) and cited[0][0] == item.doc_id),
        "ans@1": float(bool(cited) and holds_answer(cited[0], item, source)),
        "ans@cite": float(any(holds_answer(c, item, source) for c in cited)),
        "search@5": float(any(
            holds_answer((p.doc_id, p.start, p.end, p.text), item, source) for p in passages[:SEARCH_DEPTH]
        )),
        "short_em": exact_match(short, golds) if short else 0.0,
        "short_f1": char_f1(short, golds) if short else 0.0,
        "short_given": float(bool(short)),
        "abstained": float(not answer.answerable),
        "bad_citations": float(bad_citations(answer, documents)),
        "timings_ms": answer.timings_ms,
    }


def bad_citations(answer, documents: dict) -> int:
    """Citations (and a short answer) whose text is not exactly their document's text at their span."""
    bad = sum(
        c.doc_id not in documents or documents[c.doc_id].text[c.start:c.end] != c.text for c in answer.citations
    )
    short = answer.short_answer
    if short is not None:
        first = answer.citations[0] if answer.citations else None
        inside = first is not None and first.doc_id == short.doc_id and first.start <= short.start and short.end <= first.end
        exact = short.doc_id in documents and documents[short.doc_id].text[short.start:short.end] == short.text
        bad += not (inside and exact)
    return bad


def summarize(results: list[dict]) -> dict:
    """Means of every metric overall and per half (bad_citations is a count)."""
    def block(rows: list[dict]) -> dict:
        out: dict = {"items": len(rows)}
        for metric in METRICS:
            values = [r[metric] for r in rows]
            out[metric] = int(sum(values)) if metric == "bad_citations" else round(statistics.fmean(values), 4)
        return out

    halves = defaultdict(list)
    for r in results:
        halves[r["half"]].append(r)
    return {"overall": block(results), "by_kind": {h: block(v) for h, v in sorted(halves.items())}}


def run(pipeline, items: list[SpanItem]) -> list[dict]:
    """Ask every question of the pipeline (the path the API uses), search it too, and score both."""
    results = []
    for item in items:
        answer = pipeline.ask(item.question)
        passages = pipeline.search(item.question, SEARCH_DEPTH)
        results.append(score(item, answer, passages, pipeline.index.documents))
    return results
