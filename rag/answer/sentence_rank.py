"""Which retrieved sentence answers: a few measurable features per sentence, weighed by a linear ranker.

Retrieval finds the right passage; the answer then has to be the right sentence of it. The
commonest miss is the opening sentence of a passage ("X是…"), which repeats the question's
subject, while the answer sits in a later sentence that never names the subject ("体长可达
50公分。"). So besides the vector and the retrieval rank, each sentence is scored by how much
of the question it matches *within its own section*: words that every sentence of the section
shares (the subject) weigh little, and the subject of the section's first sentence counts as
present in every later sentence, which refers back to it.

The weights are fitted by ``rag fit`` on one fixed half of the CMRC suite and one fixed part of
the review's gold set (pairwise logistic regression: the answering sentence above each other
candidate) and kept in ``rag/data/sentence_ranker.json`` with their provenance.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from rag.answer.answer_types import asked_types, holds_type
from rag.indexing.index import Index
from rag.answer.language import REASON_CUES, asks_for_reason, named_entities, question_focus
from rag.answer.retriever import Retrieval
from rag.ingest.segment import content_terms, search_terms

FEATURES = (
    "scope_rank",  # 1/(1+rank) of the best retrieved chunk of the sentence's section
    "chunk_rank",  # 1/(1+rank) of the best retrieved chunk holding the sentence
    "dense",  # cosine of sentence and question vectors
    "dense_rank",  # 1/(5+rank) of that cosine among the candidates
    "bm25_rank",  # 1/(5+rank) of the sentence's BM25 score (0 when it shares no word)
    "local_terms",  # share of the question's words in the sentence, weighted by rarity in the section
    "local_bigrams",  # the same over character pairs (catches 原产地 ~ 原产于)
    "lead",  # the first sentence of its section
    "type_missing",  # the question asks for a kind of value the sentence lacks
    "length",  # log of the sentence's length
    "reason",  # a why-question, and the sentence gives a reason ("由于…", "差异可能源于…")
    "names_asked",  # the sentence names a study, person or year the question names
    "names_other",  # the question names some, and the sentence names another instead
)
# Rank-fusion constant for the candidate-relative ranks above (small lists, so small k).
RANK_K = 5


@dataclass(frozen=True)
class LinearRanker:
    """score = weights · features; only differences between candidates matter."""

    weights: dict[str, float]

    def scores(self, features: np.ndarray) -> np.ndarray:
        """One score per row of ``features`` (columns in ``FEATURES`` order)."""
        return features @ np.array([self.weights.get(name, 0.0) for name in FEATURES])


def load_ranker(path: Path | None = None) -> LinearRanker:
    """The fitted ranker shipped with the package, or one from ``path``."""
    raw = path.read_text(encoding="utf-8") if path else (resources.files("rag.data") / "sentence_ranker.json").read_text(encoding="utf-8")
    return LinearRanker({k: float(v) for k, v in json.loads(raw)["weights"].items()})


@dataclass(frozen=True)
class Scope:
    """One section of one document: its sentences, and how many of them hold each term and pair."""

    sentence_ids: tuple[int, ...]
    term_counts: Counter
    bigram_counts: Counter
    lead_terms: frozenset[str]
    lead_bigrams: frozenset[str]


def char_bigrams(text: str) -> frozenset[str]:
    """Pairs of adjacent letters or digits, lower-cased: ``"原产于，中国"`` -> ``{"原产", "产于", "中国"}``."""
    pairs = set()
    for run in _letter_runs(text.lower()):
        pairs.update(run[i:i + 2] for i in range(len(run) - 1))
    return frozenset(pairs)


def _letter_runs(text: str) -> list[str]:
    runs, current = [], []
    for ch in text:
        if ch.isalnum():
            current.append(ch)
        elif current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return runs


def sentence_terms(index: Index, sid: int) -> tuple[frozenset[str], frozenset[str]]:
    """The search terms and character pairs of sentence ``sid`` (memoised on the index)."""
    memo = index.memo.setdefault("sentence_terms", {})
    if sid not in memo:
        text = index.sentence_text(sid)
        memo[sid] = (frozenset(search_terms(text)), char_bigrams(text))
    return memo[sid]


def scope_of(index: Index, sid: int) -> Scope:
    """The section that sentence ``sid`` belongs to, with its term statistics (memoised on the index)."""
    s = index.sentences[sid]
    key = (s.doc_id, s.section)
    memo = index.memo.setdefault("scopes", {})
    if key not in memo:
        ids = tuple(i for i in _section_ids(index, sid))
        lead_terms, lead_bigrams = sentence_terms(index, ids[0])
        terms, bigrams = Counter(), Counter()
        for i in ids:
            t, b = sentence_terms(index, i)
            terms.update(t | lead_terms)  # later sentences refer back to the lead's subject
            bigrams.update(b | lead_bigrams)
        memo[key] = Scope(ids, terms, bigrams, lead_terms, lead_bigrams)
    return memo[key]


def _section_ids(index: Index, sid: int) -> range:
    """The ids of the consecutive sentences sharing ``sid``'s document and section."""
    s = index.sentences[sid]
    first = sid
    while first > 0 and _same_scope(index, first - 1, s):
        first -= 1
    last = sid
    while last + 1 < len(index.sentences) and _same_scope(index, last + 1, s):
        last += 1
    return range(first, last + 1)


def _same_scope(index: Index, i: int, s) -> bool:
    other = index.sentences[i]
    return other.doc_id == s.doc_id and other.section == s.section


def local_share(question_items: set[str], sentence_items: frozenset[str], counts: Counter, size: int) -> float:
    """Rarity-weighted share of the question's items found in a sentence of a section of ``size`` sentences."""
    weights = {x: math.log((size + 1) / (counts.get(x, 0) + 0.5)) for x in question_items}
    total = sum(weights.values())
    return sum(w for x, w in weights.items() if x in sentence_items) / total if total > 0 else 0.0


def features(index: Index, retrieval: Retrieval, question: str, candidates: list[int],
             dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    """The feature matrix of the candidate sentences (rows) in ``FEATURES`` order (columns)."""
    focus = question_focus(question)
    q_terms, q_bigrams = set(content_terms(focus)), set(char_bigrams(focus))
    kinds = asked_types(question)
    why = asks_for_reason(question)
    asked_names = {n.lower() for n in named_entities(question)}
    chunk_rank, scope_rank = _retrieval_ranks(index, retrieval)
    dense_rank = _ranks(dense)
    bm25_rank = _ranks(lexical)
    rows = []
    for k, sid in enumerate(candidates):
        scope = scope_of(index, sid)
        terms, bigrams = sentence_terms(index, sid)
        text = index.sentence_text(sid)
        s = index.sentences[sid]
        rows.append([
            # A sentence from outside the retrieved chunks (a reference entry) ranks below them all.
            1.0 / (1 + scope_rank.get((s.doc_id, s.section), len(retrieval.hits))),
            1.0 / (1 + chunk_rank.get(sid, len(retrieval.hits))),
            float(dense[k]),
            1.0 / (RANK_K + dense_rank[k]),
            1.0 / (RANK_K + bm25_rank[k]) if lexical[k] > 0 else 0.0,
            local_share(q_terms, terms | scope.lead_terms, scope.term_counts, len(scope.sentence_ids)),
            local_share(q_bigrams, bigrams | scope.lead_bigrams, scope.bigram_counts, len(scope.sentence_ids)),
            float(sid == scope.sentence_ids[0]),
            float(any(not holds_type(text, kind) for kind in kinds)),
            math.log1p(len(text)),
            float(why and bool(REASON_CUES.search(text))),
            *_name_match(asked_names, text),
        ])
    return np.array(rows, dtype=np.float64).reshape(len(candidates), len(FEATURES))


def _name_match(asked: set[str], text: str) -> tuple[float, float]:
    """(names one the question names, names only others) for a sentence; (0, 0) when the question names none."""
    if not asked:
        return 0.0, 0.0
    named = {n.lower() for n in named_entities(text)}
    same = bool(named & asked)
    return float(same), float(bool(named) and not same)


def _retrieval_ranks(index: Index, retrieval: Retrieval) -> tuple[dict[int, int], dict[tuple[str, str], int]]:
    """Rank of the best retrieved chunk holding each sentence, and of the best chunk of each section."""
    by_sentence: dict[int, int] = {}
    by_scope: dict[tuple[str, str], int] = {}
    for rank, hit in enumerate(retrieval.hits):
        chunk = index.chunks[hit.chunk]
        by_scope.setdefault((chunk.doc_id, chunk.section), rank)
        for sid in chunk.sentence_ids:
            by_sentence.setdefault(sid, rank)
    return by_sentence, by_scope


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 for the highest value, 1 for the next, ...; ties keep their order."""
    ranks = np.empty(len(values))
    ranks[np.argsort(-np.asarray(values), kind="stable")] = np.arange(len(values))
    return ranks
