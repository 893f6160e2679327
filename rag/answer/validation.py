"""Checks on questions and chat history, kept free of heavy imports so bad input fails fast."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from rag.config import Settings
from rag.errors import QuestionError


def check_question(question: str, settings: Settings) -> str:
    """The question stripped; empty, content-free, malformed or over-long questions are refused.

    ``"???"``, ``"。"`` and a zero-width space have no letter, digit or CJK character: there is
    nothing to search for. A lone surrogate (U+D800–U+DFFF) is not text at all and would break
    the tokenizers downstream.
    """
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    question = question.strip()
    if any("\ud800" <= ch <= "\udfff" for ch in question):
        raise QuestionError("the question contains an unpaired surrogate (U+D800–U+DFFF), which is not text")
    if not any(unicodedata.category(ch)[0] in "LN" for ch in question):
        raise QuestionError("the question has no letters, digits or CJK characters")
    if len(question) > settings.max_question_chars:
        raise QuestionError(f"the question is too long ({len(question)} characters; the limit is {settings.max_question_chars})")
    return question


ROLES = ("user", "assistant", "system")


def check_history(history: Sequence) -> list[dict]:
    """Earlier turns as {role, content} dicts; anything else is refused with a clear message."""
    if not isinstance(history, Sequence) or isinstance(history, str):
        raise QuestionError("history must be a list of {role, content} messages")
    turns = []
    for i, turn in enumerate(history):
        role = turn.get("role") if isinstance(turn, dict) else getattr(turn, "role", None)
        content = turn.get("content") if isinstance(turn, dict) else getattr(turn, "content", None)
        if role not in ROLES or not isinstance(content, str):
            raise QuestionError(f"history[{i}] must have a role ({', '.join(ROLES)}) and text content")
        turns.append({"role": role, "content": content})
    return turns
