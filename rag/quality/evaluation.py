"""Scoring the real pipeline against the hand-built gold set.

Evidence is kept as exact quotes of the source, so the gold set survives re-chunking:
a retrieved chunk or a cited passage "hits" when its span covers a quote's span.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.indexing.index import Index
from rag.ingest.segment import cut

HIT_DEPTH = 5


@dataclass(frozen=True)
class GoldItem:
    """One hand-written question with its reference answer, key facts and quoted evidence."""

    id: str
    kind: str
    question: str
    answerable: bool
    answer: str
    key_facts: list[list[str]]
    evidence: list[str]
    history: list[dict] = field(default_factory=list)


def load_gold(path: Path) -> list[GoldItem]:
    """Read a gold set, one JSON object a line; a malformed line is an error naming it."""
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(GoldItem(
                row["id"], row["kind"], row["question"], bool(row["answerable"]), row.get("answer", ""),
                row.get("key_facts", []), row.get("evidence", []), row.get("history", []),
            ))
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}:{n}: malformed gold item ({exc})") from None
    return items


def quote_spans(index: Index, quotes: list[str]) -> list[tuple[str, int, int]]:
    """Where each quote occurs in the indexed documents (every occurrence)."""
    spans = []
    for quote in quotes:
        for doc in index.documents.values():
            at = doc.text.find(quote)
            while at >= 0:
                spans.append((doc.doc_id, at, at + len(quote)))
                at = doc.text.find(quote, at + 1)
    return spans


def covers(span: tuple[str, int, int], quote: tuple[str, int, int]) -> bool:
    """Whether a passage span contains a quote span."""
    return span[0] == quote[0] and span[1] <= quote[1] and quote[2] <= span[2]


def overlaps_enough(span: tuple[str, int, int], quote: tuple[str, int, int]) -> bool:
    """Whether a cited passage holds evidence: it covers the quote, or half of either lies in the other."""
    if span[0] != quote[0]:
        return False
    inter = min(span[2], quote[2]) - max(span[1], quote[1])
    return inter > 0 and (inter * 2 >= quote[2] - quote[1] or inter * 2 >= span[2] - span[1])


def key_fact_share(answer: str, key_facts: list[list[str]]) -> float:
    """Share of key-fact groups with at least one accepted alternative in the answer."""
    if not key_facts:
        return 1.0
    return sum(any(alt in answer for alt in group) for group in key_facts) / len(key_facts)


def token_f1(answer: str, reference: str) -> float:
    """F1 of jieba word multisets, punctuation and spaces left out."""
    a = [w for w in cut(answer) if w.strip() and any(ch.isalnum() for ch in w)]
    r = [w for w in cut(reference) if w.strip() and any(ch.isalnum() for ch in w)]
    if not a or not r:
        return float(a == r)
    common = 0
    pool = defaultdict(int)
    for w in r:
        pool[w] += 1
    for w in a:
        if pool[w] > 0:
            common += 1
            pool[w] -= 1
    if not common:
        return 0.0
    p, rc = common / len(a), common / len(r)
    return 2 * p * rc / (p + rc)


def retrieved_spans(index: Index, retrieval) -> list[tuple[str, int, int]]:
    """The spans of the retrieved chunks, best first."""
    return [(index.chunks[h.chunk].doc_id, index.chunks[h.chunk].start, index.chunks[h.chunk].end) for h in retrieval.hits]


def score_item(item: GoldItem, index: Index, answer, chunk_spans: list[tuple[str, int, int]]) -> dict:
    """Every metric of one item, from its answer and the spans retrieved for it (best first)."""
    quotes = quote_spans(index, item.evidence)
    first_hit = next((r for r, s in enumerate(chunk_spans, start=1) if any(covers(s, q) for q in quotes)), None)
    cited = [(c.doc_id, c.start, c.end) for c in answer.citations]
    result = {
        "id": item.id,
        "kind": item.kind,
        "answerable": item.answerable,
        "abstained": not answer.answerable,
        "answer": answer.answer,
        "timings_ms": answer.timings_ms,
    }
    if item.answerable:
        cited_hit = any(covers(s, q) for s in cited for q in quotes)
        result |= {
            "rank": first_hit,
            "hit@1": float(first_hit == 1 or (bool(cited) and any(covers(cited[0], q) for q in quotes))),
            "hit@5": float((first_hit is not None and first_hit <= HIT_DEPTH) or cited_hit),
            "mrr": 1.0 / first_hit if first_hit else 0.0,
            "key_facts": key_fact_share(answer.answer, item.key_facts) if answer.answerable else 0.0,
            "citation_precision": (
                sum(any(overlaps_enough(s, q) for q in quotes) for s in cited) / len(cited) if cited else 0.0
            ),
            "token_f1": token_f1(answer.answer, item.answer) if answer.answerable else 0.0,
        }
    return result


def summarize(results: list[dict]) -> dict:
    """Overall and per-kind means, plus abstention precision and recall."""
    def block(rows: list[dict]) -> dict:
        pos = [r for r in rows if r["answerable"]]
        neg = [r for r in rows if not r["answerable"]]
        out = {"items": len(rows)}
        for metric in ("hit@1", "hit@5", "mrr", "key_facts", "citation_precision", "token_f1"):
            if pos:
                out[metric] = round(statistics.fmean(r[metric] for r in pos), 4)
        abstained = [r for r in rows if r["abstained"]]
        if neg:
            out["abstention_recall"] = round(sum(r["abstained"] for r in neg) / len(neg), 4)
        if abstained:
            out["abstention_precision"] = round(sum(not r["answerable"] for r in abstained) / len(abstained), 4)
        if pos:
            out["false_abstention"] = round(sum(r["abstained"] for r in pos) / len(pos), 4)
        return out

    by_kind = defaultdict(list)
    for r in results:
        by_kind[r["kind"]].append(r)
    return {
        "overall": block(results),
        "by_kind": {k: block(v) for k, v in sorted(by_kind.items())},
        "latency_ms": latency(results),
    }


def latency(results: list[dict]) -> dict:
    """p50, p95 and mean of each stage's time (reported, never gated: machines are noisy)."""
    stages = sorted({stage for r in results for stage in r.get("timings_ms", {})})
    out = {}
    for stage in stages:
        values = sorted(r["timings_ms"][stage] for r in results if stage in r.get("timings_ms", {}))
        out[stage] = {
            "p50": round(values[len(values) // 2], 2),
            "p95": round(values[min(len(values) - 1, int(len(values) * 0.95))], 2),
            "mean": round(statistics.fmean(values), 2),
        }
    return out


def run(pipeline, items: list[GoldItem]) -> list[dict]:
    """Answer every gold item through the pipeline (the path the API uses) and score it."""
    results = []
    for item in items:
        answer, retrieval, selection = pipeline.ask_traced(item.question, item.history)
        row = score_item(item, pipeline.index, answer, retrieved_spans(pipeline.index, retrieval))
        row["features"] = selection.features
        results.append(row)
    return results
