"""The fitted parts of answering, shipped as JSON in ``rag/data``: one object to load and pass around.

- the sentence ranker (which retrieved sentence answers, ``sentence_rank``);
- the short-answer chooser (which words of it answer, ``short_answer``);
- the abstention rule (whether the documents answer at all, ``abstention``).

``rag fit`` refits all three on the fixed ``fit`` parts of the two evaluation suites.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.answer.abstention import AbstentionRule, load_rule
from rag.answer.sentence_rank import LinearRanker, load_ranker
from rag.answer.short_answer import Chooser, load_chooser


@dataclass(frozen=True)
class AnswerModels:
    """Everything fitted that the answerer uses."""

    ranker: LinearRanker
    chooser: Chooser
    rule: AbstentionRule


def load_answer_models() -> AnswerModels:
    """The models shipped with the package."""
    return AnswerModels(load_ranker(), load_chooser(), load_rule())
