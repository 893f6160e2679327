"""Follow-up questions rewritten with the conversation before retrieval, without an LLM.

"那剂量是多少？" after "Levy等人2019年的卒中试验是怎么做的？" says nothing about Levy;
retrieval needs the earlier question's subject. A question that names its own subject
is left alone, so a new topic in the middle of a chat is not polluted by the old one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.language import named_entities
from rag.ingest.segment import specific_terms

# Openings that point back at the conversation ("那…", "它…", "what about…").
_FOLLOW_UP = re.compile(
    r"^(那|那么|那个|这个|这些|那些|它|它们|他们|其|该|此|还有|另外|另一个|同样|然后|再|"
    r"what about|how about|and |and\?|what of|then )",
    re.IGNORECASE,
)
# Citation markers of earlier answers are not words to search for.
_MARKER = re.compile(r"\[\d{1,3}\]")
# How much of the assistant's last reply joins the query (enough for its subject, not its whole quote).
ASSISTANT_CHARS = 120


def is_follow_up(question: str) -> bool:
    """Whether a question leans on earlier turns: it opens with a pointer back, or names no subject.

    A subject is a study or a year ("Kim等人", "2024年") or a precise term of the domain
    ("外泌体", "MSCs"): "随访了多久？" has none, "外泌体有什么优势？" has one.
    """
    if _FOLLOW_UP.match(question.strip()):
        return True
    return not (named_entities(question) or specific_terms(question))


def follow_up_context(question: str, history: Sequence[dict]) -> str | None:
    """The earlier turns a follow-up leans on (last user turn and the reply after it), or None."""
    turns = [m for m in history if m.get("role") in ("user", "assistant") and m.get("content", "").strip()]
    users = [i for i, m in enumerate(turns) if m["role"] == "user"]
    if not users or not is_follow_up(question):
        return None
    # The last user turn names the subject; the reply after it often names the details
    # ("半椎板切除术后…") that the follow-up asks about.
    context = [turns[users[-1]]["content"].strip()]
    context += [_MARKER.sub("", m["content"]).strip()[:ASSISTANT_CHARS] for m in turns[users[-1] + 1:] if m["role"] == "assistant"]
    return " ".join(context)


def rewrite(question: str, history: Sequence[dict]) -> str:
    """The retrieval query: the question, preceded by its context when it is a follow-up."""
    context = follow_up_context(question, history)
    return f"{context} {question}" if context else question
