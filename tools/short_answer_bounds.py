"""How far the short-answer chooser is from what its candidates allow, on CMRC (no model, no index).

    python tools/short_answer_bounds.py

Every CMRC question is given the sentence that holds its gold answer (so retrieval and the
sentence ranker are out of the picture), and three numbers are printed per half, as exact match
and character F1 against the gold answers:

- oracle: the best of the rule-proposed candidate spans (``short_answer.candidates``), the most
  any chooser over these candidates could reach;
- shipped: the packaged linear chooser (``rag/data/short_answer.json``);
- boosted: gradient-boosted trees (scikit-learn) fitted on the fit half's candidates towards
  exact match, a stronger chooser than the linear one, reported on the held half it never saw.

The pipeline's own figures (``rag eval --suite cmrc``) are lower still, since there the
sentence is the first citation's, which is not always the one holding the answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from rag.answer import short_answer
from rag.quality.cmrc import DEFAULT_PATH, answering_sentences
from rag.quality.span_eval import char_f1, exact_match


def candidate_rows(path: Path = DEFAULT_PATH) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
    """Per question of the SQuAD-layout file ``path``: its candidates' features, exact match and F1 of each, and its half."""
    rows = []
    for item, sentence in answering_sentences(path):
        golds = [a for a, _ in item.answers]
        spans, gap = short_answer.candidates(item.question, sentence)
        if not spans:
            continue
        pieces = [sentence[s.start:s.end] for s in spans]
        rows.append((short_answer.features(item.question, sentence, spans, gap),
                     np.array([exact_match(p, golds) for p in pieces]),
                     np.array([char_f1(p, golds) for p in pieces]), item.half))
    return rows


def picked(rows, half: str, score) -> tuple[float, float]:
    """Mean exact match and F1 of the best-scoring candidate per question of ``half``."""
    chosen = [(em[k], f1[k]) for x, em, f1, h in rows if h == half for k in [int(np.argmax(score(x)))]]
    return float(np.mean([c[0] for c in chosen])), float(np.mean([c[1] for c in chosen]))


def main() -> None:
    rows = candidate_rows()
    weights = short_answer.load_chooser().weights
    x = np.vstack([r[0] for r in rows if r[3] == "fit"])
    y = np.concatenate([r[1] for r in rows if r[3] == "fit"])
    trees = HistGradientBoostingClassifier(max_depth=4, max_iter=300, learning_rate=0.05, random_state=0).fit(x, y)
    print("half  questions  oracle EM/F1   shipped EM/F1   boosted EM/F1")
    for half in ("fit", "held"):
        n = sum(r[3] == half for r in rows)
        oracle = (np.mean([r[1].max() for r in rows if r[3] == half]), np.mean([r[2].max() for r in rows if r[3] == half]))
        shipped = picked(rows, half, lambda f: f @ weights)
        boosted = picked(rows, half, lambda f: trees.predict_proba(f)[:, 1])
        print(f"{half:5} {n:9}  {oracle[0]:.3f}/{oracle[1]:.3f}    {shipped[0]:.3f}/{shipped[1]:.3f}     "
              f"{boosted[0]:.3f}/{boosted[1]:.3f}")


if __name__ == "__main__":
    main()
