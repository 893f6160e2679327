"""Would more questions, or another split's answers, train a better chooser or ranker? A probe with CMRC's dev split (not used by the assistant).

    python tools/cmrc_dev_probe.py PATH/cmrc2018_dev.json [--ranker]

The suite's trial split (``eval/cmrc2018``) gives one gold answer per question, and the
project fits its short-answer chooser and sentence ranker on half of it (about 500 questions).
The public dev split of the same data set (ymcui/cmrc2018, ``squad-style-data/cmrc2018_dev.json``,
CC BY-SA 4.0 as the trial split: 848 other paragraphs, 3,219 questions with three answers each)
is not in the repository; pass its path. Printed:

- the gold answers' length in both splits, and how often dev's three annotators agree;
- the chooser given each question's answering sentence (as ``tools/short_answer_bounds.py``):
  the shipped one, and softmax choosers fitted as ``rag fit`` fits them, on dev's even-numbered
  questions alone and together with the trial's fit half, each scored on the trial's held half
  and on dev's odd-numbered questions, which none of them saw;
- with ``--ranker``, the sentence ranker's top-1 on both suites when dev's questions join its
  training (pairwise, as ``rag fit``). This indexes the dev paragraphs in the cache folder
  (``suites/cmrc2018-dev``; about 3 minutes on 2 cores the first time).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from rag.answer import short_answer
from rag.config import load_settings
from rag.quality import cmrc, fit
from rag.quality.cmrc import DEFAULT_PATH, read_squad
from short_answer_bounds import candidate_rows


def answer_lengths(path: Path) -> str:
    """Mean and median length of the first gold answer, the share of 10 characters or fewer, and annotator agreement."""
    questions = [q for p in read_squad(path) for q in p["qas"]]
    lengths = [len(q["answers"][0]["text"]) for q in questions]
    agree = statistics.mean(len({a["text"] for a in q["answers"]}) == 1 for q in questions)
    answers = statistics.mean(len(q["answers"]) for q in questions)
    return (f"{len(questions)} questions, {answers:.1f} answers each (all alike: {agree:.2f}); first answer "
            f"mean {statistics.mean(lengths):.1f}, median {statistics.median(lengths)} characters, "
            f"<= 10: {statistics.mean(n <= 10 for n in lengths):.2f}")


def scored(rows, weights: np.ndarray) -> str:
    """Exact match and F1 of the best-scoring candidate, over ``rows`` from ``candidate_rows``."""
    chosen = np.array([(em[k], f1[k]) for x, em, f1, _ in rows for k in [int(np.argmax(x @ weights))]])
    return f"{chosen[:, 0].mean():.3f}/{chosen[:, 1].mean():.3f}"


def chooser_table(dev_path: Path) -> None:
    """The shipped chooser and choosers fitted with dev's questions, on the trial's held half and dev's odd questions."""
    trial, dev = candidate_rows(DEFAULT_PATH), candidate_rows(dev_path)
    held = [r for r in trial if r[3] == fit.HELD]
    dev_train, dev_test = dev[0::2], dev[1::2]
    trial_fit = [r for r in trial if r[3] == fit.FIT]

    def fitted(rows) -> np.ndarray:
        # fit_chooser trains on the rows marked FIT, as (features, F1, exact match, half).
        chooser, _ = fit.fit_chooser([(x, f1, em, fit.FIT) for x, em, f1, _ in rows])
        return chooser.weights

    print("chooser (answering sentence given)   trial held EM/F1   dev odd EM/F1")
    choosers = [("shipped (trial fit half)", short_answer.load_chooser().weights),
                ("fitted on dev even", fitted(dev_train)),
                ("fitted on dev even + trial fit", fitted(dev_train + trial_fit))]
    for name, weights in choosers:
        print(f"{name:36} {scored(held, weights):18} {scored(dev_test, weights)}")


def ranker_table(dev_path: Path) -> None:
    """Top-1 of the sentence ranker fitted without and with dev's questions."""
    from rag.pipeline import Pipeline
    from rag.quality.evaluation import load_gold
    from rag.quality.suites import REVIEW_GOLD, open_pipeline

    settings = load_settings()
    review = open_pipeline("review", settings)
    trial = open_pipeline("cmrc", settings, review.embedder)
    root = settings.cache_dir / "suites" / "cmrc2018-dev"
    dev_settings = settings.model_copy(update={"corpus_dir": cmrc.write_corpus(dev_path, root / "corpus"),
                                               "index_dir": root / "index"})
    dev = Pipeline.open(dev_settings, True)
    rows = fit.ranking_rows(review, fit.gold_questions(review, load_gold(REVIEW_GOLD)), "review")
    rows += fit.ranking_rows(trial, fit.cmrc_questions(trial, cmrc.load_items()), "cmrc")
    dev_rows = fit.ranking_rows(dev, fit.cmrc_questions(dev, cmrc.load_items(dev_path)), "dev")
    _, without = fit.fit_ranker(rows)
    _, with_dev = fit.fit_ranker(rows + [(x, y, fit.FIT, suite) for x, y, _, suite in dev_rows])
    print("ranker top-1 without dev:", json.dumps(without))
    # Every dev question trains the second ranker: its top-1 there is on questions it saw, and it has no held half.
    print("ranker top-1 with dev:   ", json.dumps({k: v for k, v in with_dev.items() if k != "dev_held"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev", type=Path, help="cmrc2018_dev.json (SQuAD layout) from ymcui/cmrc2018")
    parser.add_argument("--ranker", action="store_true", help="also refit the sentence ranker with dev's questions")
    args = parser.parse_args()
    if not args.dev.is_file():
        parser.error(f"no such file: {args.dev}")
    print("trial:", answer_lengths(DEFAULT_PATH))
    print("dev:  ", answer_lengths(args.dev))
    chooser_table(args.dev)
    if args.ranker:
        ranker_table(args.dev)


if __name__ == "__main__":
    main()
