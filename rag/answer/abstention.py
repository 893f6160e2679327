"""When to say "the documents do not say": a logistic rule calibrated on gold questions.

e5's cosine scores sit in a narrow band (unrelated text scores ~0.8), so no fixed
similarity cut-off separates answerable from unanswerable questions. The rule instead
weighs a few features of the retrieval and the chosen passages; its weights and threshold
are fitted by ``rag fit`` on the fit halves of both evaluation suites (see ``rag.quality.fit``) and
kept in ``rag/data/abstention.json`` with the data that produced them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

FEATURES = ("top_dense", "coverage", "top_bm25", "unknown_term", "missing_type", "known_share", "clarity", "english",
            "typed_answer", "names_found")


@dataclass(frozen=True)
class AbstentionRule:
    """P(answerable) = sigmoid(bias + weights · features); abstain below ``threshold``."""

    weights: dict[str, float]
    bias: float
    threshold: float = 0.5

    def probability(self, features: dict[str, float]) -> float:
        """Probability that the documents answer the question."""
        z = self.bias + sum(w * transform(name, features.get(name, 0.0)) for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-z))

    def answerable(self, features: dict[str, float]) -> bool:
        """Whether to answer rather than abstain.

        A question none of whose topic words the documents use ("谢谢", "今天天气怎么样？",
        "What is the capital of France?") is declined outright: nothing in them is about it,
        however near some sentence's vector happens to lie. A question asking for a reference that
        the selection answers with one is decided by its topic (``extractive._reference_features``):
        the rule, fitted on questions about the text, knows nothing of reference lines.
        """
        if features.get("reference_answer"):
            return True
        if features.get("reference_off_topic"):
            return False
        if features.get("known_share", 1.0) <= 0.0:
            return False
        return self.probability(features) >= self.threshold

    def to_json(self, **provenance) -> str:
        """The rule and where it came from, as JSON."""
        return json.dumps(
            {"weights": self.weights, "bias": self.bias, "threshold": self.threshold, **provenance},
            ensure_ascii=False,
            indent=2,
        )


def transform(name: str, value: float) -> float:
    """BM25 scores grow with query length; their log keeps one long question from dominating."""
    return math.log1p(max(0.0, value)) if name == "top_bm25" else value


def load_rule(path: Path | None = None) -> AbstentionRule:
    """The calibrated rule shipped with the package, or one from ``path``."""
    if path is None:
        raw = (resources.files("rag.data") / "abstention.json").read_text(encoding="utf-8")
    else:
        raw = path.read_text(encoding="utf-8")
    data = json.loads(raw)
    return AbstentionRule({k: float(v) for k, v in data["weights"].items()}, float(data["bias"]), float(data["threshold"]))
