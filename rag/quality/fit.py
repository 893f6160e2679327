"""Fitting the answer models (``rag fit``) on the fixed ``fit`` parts of both evaluation suites.

Everything fitted here is fitted on one fixed half and reported on the other as well, so a
number on the ``held`` half is one the models never saw:

1. the sentence ranker: pairwise logistic regression, the answering sentence above every other
   candidate of the same question (CMRC questions and the review's answerable gold questions);
2. the short-answer chooser: logistic regression picking, among the candidate spans of the
   answering sentence, the one closest to the gold answer (CMRC questions);
3. the abstention rule: balanced logistic regression on the selection's features, answerable
   (both suites) against unanswerable (the review's gold set, every unanswerable kind).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rag.answer import sentence_rank, short_answer
from rag.indexing.store import sha256_file
from rag.answer.abstention import FEATURES as RULE_FEATURES
from rag.answer.abstention import AbstentionRule, transform
from rag.quality.cmrc import SpanItem
from rag.quality.evaluation import GoldItem, overlaps_enough, quote_spans
from rag.answer.extractive import candidate_features
from rag.quality.halves import FIT, HELD, half_of
from rag.quality.span_eval import char_f1, exact_match

# Where the package keeps its fitted models (``rag/data``).
PACKAGED_MODELS = Path(__file__).resolve().parents[1] / "data"
# Strong regularisation: a few hundred questions, and the models must carry to new documents.
RANKER_C = 0.01
# The chooser's softmax: the L2 penalties tried (on standardised weights; the one that
# cross-validates best on the fit half wins), and how sharply its target favours the best
# candidate (5: a candidate 0.2 F1 behind the best gets e^-1 of its weight).
CHOOSER_L2_GRID = (0.1, 1.0, 3.0, 10.0, 30.0, 100.0)
CHOOSER_FOLDS = 4
CHOOSER_SHARPNESS = 5.0
# The share of exact match (against F1) in a candidate's worth when fitting the chooser. Chosen by
# 4-fold cross-validation in CMRC's fit half on the mean of F1 and exact match: 0.25 and 0.5 tied
# (.431 / .432), 0 was lower (.420); 0.25 keeps F1 the higher of the two.
CHOOSER_EXACT_SHARE = 0.25
RULE_C = 1.0


@dataclass(frozen=True)
class Question:
    """A training question: its text, earlier turns, which sentences answer it, and its half."""

    id: str
    text: str
    history: list[dict]
    answers: Callable[[int], bool]  # sentence id -> does it hold the answer
    half: str


def cmrc_questions(pipeline, items: list[SpanItem]) -> list[Question]:
    """CMRC questions: a sentence answers when it is from the own paragraph and holds a gold answer."""
    index = pipeline.index

    def answers_of(item: SpanItem) -> Callable[[int], bool]:
        def holds(sid: int) -> bool:
            s = index.sentences[sid]
            text = index.sentence_text(sid)
            return s.doc_id == item.doc_id and any(
                (s.start <= at and at + len(a) <= s.end) or a in text for a, at in item.answers
            )
        return holds

    return [Question(i.id, i.question, [], answers_of(i), i.half) for i in items]


def gold_questions(pipeline, items: list[GoldItem]) -> list[Question]:
    """The review's answerable gold questions: a sentence answers when it overlaps an evidence quote."""
    index = pipeline.index

    def answers_of(item: GoldItem) -> Callable[[int], bool]:
        quotes = quote_spans(index, item.evidence)

        def holds(sid: int) -> bool:
            s = index.sentences[sid]
            return any(overlaps_enough((s.doc_id, s.start, s.end), q) for q in quotes)
        return holds

    return [Question(i.id, i.question, i.history, answers_of(i), half_of(i.id)) for i in items if i.answerable]


def ranking_rows(pipeline, questions: list[Question], suite: str) -> list[tuple[np.ndarray, np.ndarray, str, str]]:
    """Per question: the candidates' feature matrix, which candidates answer, the half and the suite."""
    rows = []
    for q in questions:
        query, _, answer_from = pipeline.prepare(q.text, q.history)
        candidates, _, _, x = candidate_features(pipeline.index, answer_from, query)
        if not candidates:
            continue
        rows.append((x, np.array([q.answers(c) for c in candidates]), q.half, suite))
    return rows


def fit_ranker(rows: list[tuple[np.ndarray, np.ndarray, str, str]]) -> tuple[sentence_rank.LinearRanker, dict]:
    """Pairwise logistic regression on the fit half; top-1 accuracy reported per suite and half.

    Every (answering, other) pair of candidates weighs the same. Weighing the suites equally
    instead was measured and rejected: CMRC's held top-1 fell by 3 points and the review
    gained nothing (the review has a few dozen fit questions, too few to steer the weights).
    """
    train = [(x, y) for x, y, half, _ in rows if half == FIT and y.any() and (~y).any()]
    coef = pairwise_weights(train)
    coef /= _temperature(coef, train)
    ranker = sentence_rank.LinearRanker({name: round(float(c), 6) for name, c in zip(sentence_rank.FEATURES, coef)})
    report = {f"{suite}_{half}": _top1(ranker, [r for r in rows if r[3] == suite], half)
              for suite in sorted({r[3] for r in rows}) for half in (FIT, HELD)}
    return ranker, report


def pairwise_weights(train: list[tuple[np.ndarray, np.ndarray]], c: float = RANKER_C) -> np.ndarray:
    """Linear weights under which each question's answering candidates (``y``) score above its others:
    logistic regression on the standardised differences of every (answering, other) pair."""
    from sklearn.linear_model import LogisticRegression

    scale = np.vstack([x for x, _ in train]).std(axis=0) + 1e-9
    d = np.vstack([((x[y][:, None, :] - x[~y][None, :, :]) / scale).reshape(-1, x.shape[1]) for x, y in train])
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=5000)
    model.fit(np.vstack([d, -d]), np.r_[np.ones(len(d)), np.zeros(len(d))])
    return model.coef_[0] / scale


def _temperature(weights: np.ndarray, train: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """The scale at which a softmax over each question's candidate scores best predicts its answers.

    With it, exp(score - best score) reads as "how likely this sentence answers, relative to the
    best one", which is what the several-passage and second-passage ratios compare against.
    """
    def loss(t: float) -> float:
        total = 0.0
        for x, y in train:
            z = x @ weights / t
            z -= z.max()
            total -= np.log(np.exp(z[y]).sum() / np.exp(z).sum())
        return total
    return min(np.exp(np.linspace(-3, 3, 61)), key=loss)


def _top1(ranker, rows, half: str) -> float:
    """Share of the half's questions whose best-ranked candidate answers."""
    picked = [y[int(np.argmax(ranker.scores(x)))] for x, y, h, _ in rows if h == half]
    return round(float(np.mean(picked)), 4) if picked else 0.0


def chooser_rows(pipeline, items: list[SpanItem]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
    """Per CMRC question: the candidate features of its first citation's sentences, as the
    pipeline answers it, and each candidate's F1 and exact match against the gold answers.

    The chooser is fitted on what it will see, so it learns to pick among several cited
    sentences too, not only within the one that holds the answer.
    """
    index, rows = pipeline.index, []
    for item in items:
        answer, _, selection = pipeline.ask_traced(item.question)
        if not answer.answerable or not selection.passages:
            continue
        first = selection.passages[0]
        golds = [a for a, _ in item.answers]
        x, f1, em = [], [], []
        for sid in range(first.first, first.last + 1):
            sentence = index.sentence_text(sid)
            spans, gap = short_answer.candidates(item.question, sentence)
            if spans:
                x.append(short_answer.features(item.question, sentence, spans, gap))
                f1 += [char_f1(sentence[s.start:s.end], golds) for s in spans]
                em += [exact_match(sentence[s.start:s.end], golds) for s in spans]
        if x:
            rows.append((np.vstack(x), np.array(f1), np.array(em), item.half))
    return rows


def fit_chooser(rows) -> tuple[short_answer.Chooser, dict]:
    """A softmax over each question's candidates, fitted on the fit half towards those closest to a gold answer.

    A candidate's worth is its F1 with a quarter weight on exact match (CHOOSER_EXACT_SHARE): F1
    alone favours the whole clause around an answer, which always overlaps it, over the exact
    words. The target spreads over candidates by that worth (sharpened by CHOOSER_SHARPNESS), so
    a near miss counts for something; questions whose citation holds no part of the answer teach
    nothing and are left out. The L2 penalty is chosen by cross-validation inside the fit half
    (the held half is only reported). Reported: the penalty, and per half the mean F1 and exact
    match of the chosen candidate.
    """
    train = [(x, (1 - CHOOSER_EXACT_SHARE) * f1 + CHOOSER_EXACT_SHARE * em)
             for x, f1, em, half in rows if half == FIT and f1.max() > 0]
    folds = [train[k::CHOOSER_FOLDS] for k in range(CHOOSER_FOLDS)]

    def validated(l2: float) -> float:
        picked = []
        for k, fold in enumerate(folds):
            w = _softmax_weights([q for j, f in enumerate(folds) if j != k for q in f], l2)
            picked += [worth[int(np.argmax(x @ w))] for x, worth in fold]
        return float(np.mean(picked))

    l2 = max(CHOOSER_L2_GRID, key=validated)
    chooser = short_answer.Chooser(_softmax_weights(train, l2))
    report: dict = {"l2": l2}
    for half in (FIT, HELD):
        chosen = np.array([(f1[k], em[k]) for x, f1, em, h in rows if h == half
                           for k in [int(np.argmax(x @ chooser.weights))]]).reshape(-1, 2)
        f1_mean, exact_mean = chosen.mean(axis=0).round(4).tolist() if len(chosen) else (0.0, 0.0)
        report[half] = {"f1": f1_mean, "exact": exact_mean}
    return chooser, report


def _softmax_weights(train: list[tuple[np.ndarray, np.ndarray]], l2: float) -> np.ndarray:
    """Weights of a softmax over candidates, fitted towards the F1-sharpened target with an L2 penalty."""
    from scipy.optimize import minimize

    scale = np.vstack([x for x, _ in train]).std(axis=0) + 1e-9
    targets = []
    for x, f1 in train:
        t = np.exp(CHOOSER_SHARPNESS * (f1 - f1.max()))
        targets.append((x / scale, t / t.sum()))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = l2 * w @ w / 2, l2 * w
        for x, target in targets:
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            total -= float(target @ np.log(p + 1e-12))
            grad = grad - x.T @ (target - p)
        return total, grad

    return minimize(loss, np.zeros(scale.size), jac=True, method="L-BFGS-B").x / scale


def rule_rows(pipeline, questions: list[tuple[str, list[dict], bool, str]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Abstention features of (question, history, answerable, half) tuples, as the pipeline computes them."""
    rows, labels, halves = [], [], []
    for text, history, answerable, half in questions:
        _, _, selection = pipeline.ask_traced(text, history)
        rows.append([transform(name, selection.features.get(name, 0.0)) for name in RULE_FEATURES])
        labels.append(int(answerable))
        halves.append(half)
    return np.array(rows), np.array(labels), halves


def fit_rule(x: np.ndarray, y: np.ndarray, halves: list[str], suites: list[str]) -> AbstentionRule:
    """Balanced logistic regression on the fit half, each suite's answerable questions weighing the same
    in total, each weight held to the sign its feature's meaning gives it (RULE_SIGNS); the threshold is the highest whose false abstention on each suite's fit half stays
    within MAX_FALSE_ABSTENTION (declining more, where that costs no answerable question)."""
    known = x[:, RULE_FEATURES.index("known_share")] > 0  # the rest are declined before the rule
    train = np.array([h == FIT for h in halves]) & known
    suites_arr = np.array(suites)
    weights = np.ones(len(y))
    answerable_counts = {s: int(((suites_arr == s) & (y == 1) & train).sum()) for s in set(suites)}
    smallest = min(c for c in answerable_counts.values() if c)
    for s, count in answerable_counts.items():
        weights[(suites_arr == s) & (y == 1)] = smallest / count if count else 1.0
    mean, scale = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
    standard_coef, intercept = _signed_logistic((x[train] - mean) / scale, y[train], weights[train])
    coef = standard_coef / scale
    bias = float(intercept - (standard_coef * mean / scale).sum())
    rule = AbstentionRule({n: round(float(w), 6) for n, w in zip(RULE_FEATURES, coef)}, round(bias, 6), 0.5)
    probabilities = np.array([rule.probability(dict(zip(RULE_FEATURES, row))) for row in _untransformed(x)])
    probabilities[~known] = 0.0
    return replace(rule, threshold=_threshold(probabilities, y, np.array([h == FIT for h in halves]), suites_arr))


# The sign each rule weight must have: +1 where more of the feature means the documents hold more
# of the question (higher similarity, more of its words, the asked kind of value found), -1 where
# it means less (an unknown term, a missing value), 0 free. Unconstrained, the features that move
# together (top_dense, coverage and clarity) share one effect with opposite signs: a rule fitted
# that way weighed top_dense at -8.4 and coverage at -0.4, and so answered off-topic questions
# whose words the documents barely use.
RULE_SIGNS = {"top_dense": 1, "coverage": 1, "top_bm25": 1, "unknown_term": -1, "missing_type": -1, "known_share": 1,
              "clarity": 1, "english": 0, "typed_answer": 1, "names_found": 1}


def _signed_logistic(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of an L2 logistic regression (scikit-learn's objective with
    C=RULE_C and balanced classes) whose coefficients keep the signs of RULE_SIGNS."""
    from scipy.optimize import minimize

    classes = {c: len(y) / (2 * max(1, int((y == c).sum()))) for c in (0, 1)}
    w = sample_weight * np.where(y == 1, classes[1], classes[0])
    sign = np.array([RULE_SIGNS[name] for name in RULE_FEATURES])
    bounds = [(0, None) if s > 0 else (None, 0) if s < 0 else (None, None) for s in sign] + [(None, None)]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta[:-1] + theta[-1]
        p = 1 / (1 + np.exp(-z))
        value = RULE_C * float(w @ (np.logaddexp(0, z) - y * z)) + 0.5 * theta[:-1] @ theta[:-1]
        g = RULE_C * (w * (p - y))
        return value, np.r_[x.T @ g + theta[:-1], g.sum()]

    theta = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds).x
    return theta[:-1], float(theta[-1])


# Most answerable questions of one suite's fit half the rule may decline.
MAX_FALSE_ABSTENTION = 0.03


def _threshold(p: np.ndarray, y: np.ndarray, train: np.ndarray, suites: np.ndarray) -> float:
    """The highest probability cut-off at which the rule declines at most MAX_FALSE_ABSTENTION of each
    suite's answerable fit questions, besides those the known-words check already declines (p = 0)."""
    for cut in np.round(np.arange(0.9, 0.0, -0.01), 2):
        within = all(
            ((p[m] < cut) & (p[m] > 0)).mean() <= MAX_FALSE_ABSTENTION
            for s in set(suites) if (m := train & (suites == s) & (y == 1)).any()
        )
        if within:
            return float(cut)
    return 0.01


def rule_report(rule: AbstentionRule, x: np.ndarray, y: np.ndarray, halves: list[str], kinds: list[str]) -> dict:
    """Abstention recall and false abstention per half, and recall per unanswerable kind per half."""
    answerable = np.array([rule.answerable(dict(zip(RULE_FEATURES, row))) for row in _untransformed(x)])
    kinds_arr = np.array(kinds)
    report: dict = {"threshold": rule.threshold}
    for half in (FIT, HELD):
        mask = np.array([h == half for h in halves])
        neg, pos = mask & (y == 0), mask & (y == 1)
        new_kinds = neg & (kinds_arr != "unanswerable")
        report[half] = {
            "abstention_recall": _share(~answerable[neg]),
            "abstention_recall_new_kinds": _share(~answerable[new_kinds]),
            "false_abstention_review": _share(~answerable[pos & (kinds_arr != "cmrc")]),
            "false_abstention_cmrc": _share(~answerable[pos & (kinds_arr == "cmrc")]),
            "by_kind": {k: _share(~answerable[neg & (kinds_arr == k)]) for k in sorted(set(kinds_arr[neg]))},
        }
    return report


def _share(flags: np.ndarray) -> float | None:
    return round(float(flags.mean()), 4) if len(flags) else None


def _untransformed(x: np.ndarray) -> np.ndarray:
    """Rows back in raw feature units (the rule applies its own transforms)."""
    out = x.copy()
    for j, name in enumerate(RULE_FEATURES):
        if name == "top_bm25":
            out[:, j] = np.expm1(out[:, j])
    return out


def with_models(pipeline, **changes):
    """A pipeline sharing everything with ``pipeline`` but the given answer models."""
    return replace(pipeline, models=replace(pipeline.models, **changes))


def write_model(path: Path, weights: dict, **provenance) -> None:
    """Write fitted weights with where they came from."""
    data = {"weights": weights, "fitted_by": "rag fit", "fitted_at": time.strftime("%Y-%m-%d"), **provenance}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")




def fit_all(settings, out: Path | None = None, only_rule: bool = False, only_chooser: bool = False) -> dict:
    """Fit the ranker, the chooser and the rule on both suites' fit halves; write them; return the report.

    With ``only_rule`` the packaged ranker and chooser are kept and only the abstention rule is
    refitted, on the features they produce: the rule then matches the models it ships beside.
    With ``only_chooser`` only the short-answer chooser is refitted, on the packaged ranker's
    citations (the rule reads no short answer, so it stays valid).
    """
    if only_rule and only_chooser:
        raise ValueError("--only-rule and --only-chooser exclude each other")
    from rag.quality.cmrc import DEFAULT_PATH, load_items
    from rag.quality.evaluation import load_gold
    from rag.quality.suites import REVIEW_GOLD, open_pipeline

    review = open_pipeline("review", settings)
    spans = open_pipeline("cmrc", settings, review.embedder)
    gold, items = load_gold(REVIEW_GOLD), load_items(DEFAULT_PATH)
    folder = out or PACKAGED_MODELS
    folder.mkdir(parents=True, exist_ok=True)
    sources = {"cmrc_sha256": sha256_file(DEFAULT_PATH), "gold_sha256": sha256_file(REVIEW_GOLD),
               "halves": "rag.quality.halves.half_of: CMRC by paragraph id, the review's gold set by question id"}
    result: dict = {}
    if only_chooser:
        chooser, report = fit_chooser(chooser_rows(spans, items))
        _write_chooser(folder, chooser, report, sources)
        return {"short_answer": report}
    if not only_rule:
        review, spans, result = _fit_answer_models(review, spans, gold, items, folder, sources)
    result["abstention"] = _fit_abstention(review, spans, gold, items, folder,
                                          {**sources, "fitted_by": "rag fit --only-rule" if only_rule else "rag fit"})
    return result


def _fit_answer_models(review, spans, gold, items, folder: Path, sources: dict):
    """Fit and write the sentence ranker and the short-answer chooser; the pipelines now using them."""
    rows = ranking_rows(review, gold_questions(review, gold), "review") + ranking_rows(spans, cmrc_questions(spans, items), "cmrc")
    ranker, ranker_report = fit_ranker(rows)
    write_model(folder / "sentence_ranker.json", ranker.weights, top1=ranker_report, **sources)

    chooser, chooser_report = fit_chooser(chooser_rows(with_models(spans, ranker=ranker), items))
    _write_chooser(folder, chooser, chooser_report, sources)
    review, spans = (with_models(p, ranker=ranker, chooser=chooser) for p in (review, spans))
    return review, spans, {"sentence_ranker_top1": ranker_report, "short_answer_f1": chooser_report}


def _write_chooser(folder: Path, chooser: short_answer.Chooser, report: dict, sources: dict) -> None:
    """Write the chooser's weights by feature name, with its per-half F1 and exact match."""
    write_model(folder / "short_answer.json", dict(zip(short_answer.feature_names(), map(float, chooser.weights.round(6)))),
                chosen_span=report, **sources)


def _fit_abstention(review, spans, gold, items, folder: Path, sources: dict) -> dict:
    """Fit and write the abstention rule on the features the pipelines' answer models produce."""
    questions = [(i.question, i.history, i.answerable, half_of(i.id)) for i in gold]
    questions += [(i.question, [], True, i.half) for i in items]
    kinds = [i.kind for i in gold] + ["cmrc"] * len(items)
    x1, y1, h1 = rule_rows(review, questions[:len(gold)])
    x2, y2, h2 = rule_rows(spans, questions[len(gold):])
    x, y, halves = np.vstack([x1, x2]), np.r_[y1, y2], h1 + h2
    rule = fit_rule(x, y, halves, ["review"] * len(h1) + ["cmrc"] * len(h2))
    report = rule_report(rule, x, y, halves, kinds)
    data = json.loads(rule.to_json(fitted_at=time.strftime("%Y-%m-%d"), feature_transforms={"top_bm25": "log1p"},
                                   report=report, **sources))
    (folder / "abstention.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return report
