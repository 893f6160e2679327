"""Cheap facts about a question's language and form that steer how it is answered."""

from __future__ import annotations

import re

_LATIN = re.compile(r"[A-Za-z]")
_CJK = re.compile(r"[\u3400-\u9fff]")
# Cues that a question compares things or asks for a list, in Chinese and English.
_COMPARE = re.compile(
    r"比较|对比|区别|不同|差异|异同|不一致|矛盾|分别|各自|哪些|哪几|有几项|都有|列举|几种|"
    r"\bcompar|\bdiffer|\bversus\b|\bvs\b|\bwhich (studies|trials)|\blist\b|\bboth\b",
    re.IGNORECASE,
)
# Lookarounds, not \b: in "Bang和Chung" the CJK characters count as word characters.
_NAME = re.compile(r"(?<![A-Za-z])[A-Z][a-zà-ÿ]+(?![A-Za-z])|(?<!\d)(?:19|20)\d\d(?!\d)")


def is_english(text: str) -> bool:
    """True when Latin letters outnumber CJK characters: ``"Why did Bang differ?"`` -> True."""
    return len(_LATIN.findall(text)) > 2 * len(_CJK.findall(text))


def asks_for_several(question: str) -> bool:
    """Whether the question compares or lists (``"Bang和Chung有何不同？"`` -> True)."""
    return bool(_COMPARE.search(question))


def named_entities(question: str) -> list[str]:
    """Capitalised Latin names and years the question mentions: ``"Bang和Chung"`` -> ``["Bang", "Chung"]``."""
    seen = dict.fromkeys(m.group() for m in _NAME.finditer(question))
    return [w for w in seen if w.lower() not in _COMMON_CAPITALISED]


_COMMON_CAPITALISED = frozenset(
    {"what", "which", "who", "why", "how", "when", "where", "did", "does", "do", "is", "are", "was", "were",
     "in", "the", "a", "an", "according", "can", "could", "should", "would", "msc", "mscs", "ms", "and", "of"}
)
