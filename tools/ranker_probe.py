"""Would more signals put the answering sentence first? A probe of the sentence ranker (not used by the assistant).

    python tools/ranker_probe.py

The shipped ranker (``rag/answer/sentence_rank.py``) puts the answering sentence first for about
0.78 of CMRC's held questions. Its commonest miss is a section's opening sentence, which names the
subject, ranked above the later sentence that holds the asked detail. Each candidate sentence of
both suites' questions (as ``rag fit`` sees them) gets these extra columns:

- ``gap_share``, ``gap_both_sides``: how much of the question lines up around its question word in
  the sentence (``short_answer.question_gap``), and whether it does on both sides;
- ``chooser_best``: the short-answer chooser's best candidate score in the sentence;
- ``new_terms``, ``new_pairs``: the rarity-weighted share of the question's words and character
  pairs that the section's opening sentence lacks, found in this sentence;
- ``own_pairs``: the same share of all the question's pairs, without crediting the opening
  sentence's subject to later sentences.

Rankers are fitted on the fit halves (pairwise logistic regression as ``rag fit`` does, at two
penalties, and gradient-boosted trees) and top-1 accuracy is printed per suite and half.
"""

from __future__ import annotations

import numpy as np

from rag.answer import sentence_rank, short_answer
from rag.answer.extractive import candidate_features
from rag.answer.language import question_focus
from rag.config import load_settings
from rag.ingest.segment import content_terms
from rag.quality import fit
from rag.quality.cmrc import load_items
from rag.quality.evaluation import load_gold
from rag.quality.suites import REVIEW_GOLD, open_pipeline

EXTRA = ("gap_share", "gap_both_sides", "chooser_best", "new_terms", "new_pairs", "own_pairs")
TRIED = ((), ("gap_share", "gap_both_sides"), ("chooser_best",), ("new_terms", "new_pairs"), ("own_pairs",), EXTRA)


def extra_columns(index, chooser, question: str, sid: int) -> list[float]:
    """The EXTRA columns of candidate sentence ``sid``."""
    text = index.sentence_text(sid)
    gap = short_answer.question_gap(question, text.rstrip("。！？!?；; "))
    spans, span_gap = short_answer.candidates(question, text)
    chooser_best = float((short_answer.features(question, text, spans, span_gap) @ chooser.weights).max()) if spans else -10.0
    focus = question_focus(question)
    terms, pairs = set(content_terms(focus)), set(sentence_rank.char_bigrams(focus))
    scope = sentence_rank.scope_of(index, sid)
    own_terms, own_pairs = sentence_rank.sentence_terms(index, sid)
    size = len(scope.sentence_ids)
    return [(gap.left + gap.right) / max(1, len(question)) if gap else 0.0,
            float(bool(gap and gap.left and gap.right)),
            chooser_best,
            sentence_rank.local_share(terms - scope.lead_terms, own_terms, scope.term_counts, size),
            sentence_rank.local_share(pairs - scope.lead_bigrams, own_pairs, scope.bigram_counts, size),
            sentence_rank.local_share(pairs, own_pairs, scope.bigram_counts, size)]


def rows_of(pipeline, questions, suite: str) -> list[tuple[np.ndarray, np.ndarray, str, str]]:
    """Per question: shipped and extra columns of its candidates, which answer, its half and suite."""
    rows = []
    for q in questions:
        query, _, answer_from = pipeline.prepare(q.text, q.history)
        candidates, _, _, x = candidate_features(pipeline.index, answer_from, query)
        if candidates:
            extra = np.array([extra_columns(pipeline.index, pipeline.models.chooser, query, c) for c in candidates])
            rows.append((np.hstack([x, extra]), np.array([q.answers(c) for c in candidates]), q.half, suite))
    return rows


def top1(rows, columns: list[int], score) -> str:
    """Top-1 accuracy per suite and half of the best-scoring candidate."""
    out = []
    for suite in ("cmrc", "review"):
        for half in (fit.FIT, fit.HELD):
            hits = [y[int(np.argmax(score(x[:, columns])))] for x, y, h, s in rows if s == suite and h == half]
            out.append(f"{suite} {half} {np.mean(hits):.3f}")
    return ", ".join(out)


def main() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    settings = load_settings()
    review = open_pipeline("review", settings, progress=False)
    cmrc = open_pipeline("cmrc", settings, review.embedder, progress=False)
    rows = (rows_of(review, fit.gold_questions(review, load_gold(REVIEW_GOLD)), "review")
            + rows_of(cmrc, fit.cmrc_questions(cmrc, load_items()), "cmrc"))
    shipped = len(sentence_rank.FEATURES)
    for added in TRIED:
        columns = list(range(shipped)) + [shipped + EXTRA.index(name) for name in added]
        train = [(x[:, columns], y) for x, y, half, _ in rows if half == fit.FIT and y.any() and (~y).any()]
        for c in (fit.RANKER_C, 0.1):
            weights = fit.pairwise_weights(train, c)
            print(f"linear C={c} + {list(added)}: {top1(rows, columns, lambda x: x @ weights)}", flush=True)
    columns = list(range(shipped + len(EXTRA)))
    x = np.vstack([r[0] for r in rows if r[2] == fit.FIT])
    y = np.concatenate([r[1] for r in rows if r[2] == fit.FIT])
    trees = HistGradientBoostingClassifier(max_depth=3, max_iter=300, learning_rate=0.05, random_state=0).fit(x, y)
    print(f"boosted trees + {list(EXTRA)}: {top1(rows, columns, lambda x: trees.predict_proba(x)[:, 1])}")


if __name__ == "__main__":
    main()
