"""Fitting the abstention rule on the gold set's answerable and unanswerable questions."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from rag.abstention import FEATURES, AbstentionRule, transform
from rag.evaluation import GoldItem

# Strong regularisation: the gold set is small, and the rule must carry to new questions.
REGULARISATION_C = 1.0


def feature_rows(pipeline, items: list[GoldItem]) -> tuple[np.ndarray, np.ndarray]:
    """Abstention features of every gold item, as the pipeline computes them, and its label."""
    rows, labels = [], []
    for item in items:
        _, _, selection = pipeline.ask_traced(item.question, item.history)
        rows.append([transform(name, selection.features.get(name, 0.0)) for name in FEATURES])
        labels.append(int(item.answerable))
    return np.array(rows), np.array(labels)


def fit(x: np.ndarray, y: np.ndarray) -> tuple[AbstentionRule, dict]:
    """A balanced logistic rule, and its leave-one-out abstention recall and false-abstention rate."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    model = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=5000)
    held_out = cross_val_predict(model, x, y, cv=LeaveOneOut(), method="predict_proba")[:, 1]
    model.fit(x, y)
    abstain = held_out < 0.5
    report = {
        "leave_one_out_abstention_recall": round(float((abstain & (y == 0)).sum() / max(1, (y == 0).sum())), 4),
        "leave_one_out_false_abstention": round(float((abstain & (y == 1)).sum() / max(1, (y == 1).sum())), 4),
        "answerable": int((y == 1).sum()),
        "unanswerable": int((y == 0).sum()),
    }
    weights = {name: round(float(w), 6) for name, w in zip(FEATURES, model.coef_[0])}
    return AbstentionRule(weights, round(float(model.intercept_[0]), 6), 0.5), report


def provenance(gold_path: Path, report: dict) -> dict:
    """Where a fitted rule came from, stored beside it."""
    return {
        "fitted_by": "rag calibrate",
        "fitted_at": time.strftime("%Y-%m-%d"),
        "gold_sha256": hashlib.sha256(gold_path.read_bytes()).hexdigest(),
        "feature_transforms": {"top_bm25": "log1p"},
        **report,
    }
