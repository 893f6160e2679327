"""Checks on questions and chat history, kept free of heavy imports so bad input fails fast."""

from __future__ import annotations

from collections.abc import Sequence

from rag.config import Settings
from rag.errors import QuestionError


def check_question(question: str, settings: Settings) -> str:
    """The question stripped; empty or over-long questions are refused with a clear message."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    question = question.strip()
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
