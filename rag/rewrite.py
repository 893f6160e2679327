"""Follow-up questions rewritten with the conversation before retrieval, without an LLM.

"那剂量是多少？" after "Levy等人2019年的卒中试验是怎么做的？" says nothing about Levy;
retrieval needs the earlier question's subject. A question that names its own subject
is left alone, so a new topic in the middle of a chat is not polluted by the old one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.language import named_entities
from rag.segment import content_terms

# Openings that point back at the conversation ("那…", "它…", "what about…").
_FOLLOW_UP = re.compile(
    r"^(那|那么|那个|这个|这些|那些|它|它们|他们|其|该|此|还有|另外|另一个|同样|然后|再|"
    r"what about|how about|and |and\?|what of|then )",
    re.IGNORECASE,
)
# A term found in at most this share of sentences pins a question to one subject.
ANCHOR_MAX_SHARE = 0.03
# How much of the assistant's last reply joins the query (enough for its subject, not its whole quote).
ASSISTANT_CHARS = 120


def is_follow_up(question: str, document_frequency: dict[str, int], n_sentences: int) -> bool:
    """Whether a question leans on earlier turns: it opens with a pointer back, or has no subject of its own."""
    if _FOLLOW_UP.match(question.strip()):
        return True
    if named_entities(question):
        return False
    limit = max(1, int(ANCHOR_MAX_SHARE * n_sentences))
    anchors = [t for t in content_terms(question) if 0 < document_frequency.get(t, 0) <= limit]
    return not anchors


def rewrite(question: str, history: Sequence[dict], document_frequency: dict[str, int], n_sentences: int) -> str:
    """The retrieval query: the question, preceded by the last user turn when it is a follow-up."""
    turns = [m for m in history if m.get("role") in ("user", "assistant") and m.get("content", "").strip()]
    users = [i for i, m in enumerate(turns) if m["role"] == "user"]
    if not users or not is_follow_up(question, document_frequency, n_sentences):
        return question
    # The last user turn names the subject; the reply after it often names the details
    # ("半椎板切除术后…") that the follow-up asks about.
    context = [turns[users[-1]]["content"].strip()]
    context += [m["content"].strip()[:ASSISTANT_CHARS] for m in turns[users[-1] + 1:] if m["role"] == "assistant"]
    return " ".join(context + [question])
