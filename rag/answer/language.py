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
# Question words: they say what is asked, not what the answer sentence contains.
QUESTION_WORDS = re.compile(
    r"为什么(?!\W*$)|为何(?!\W*$)|什么时候|什么地方|什么时间|什么样的?|什么|哪一?些|哪一?个|哪里|哪儿|哪一|哪|谁|多少|多久|几|"
    r"何时|何地|何处|何|怎么样|怎么|怎样|如何|是否|吗|呢|"
    r"\b(?:what|which|who|whom|whose|why|how|when|where)\b|[？?]",
    re.IGNORECASE,
)
# Lookarounds, not \b: in "Bang和Chung" the CJK characters count as word characters.
_NAME = re.compile(r"(?<![A-Za-z])[A-Z][a-zà-ÿ]+(?![A-Za-z])|(?<!\d)(?:19|20)\d\d(?!\d)")


def is_english(text: str) -> bool:
    """True when Latin letters outnumber CJK characters: ``"Why did Bang differ?"`` -> True."""
    return len(_LATIN.findall(text)) > 2 * len(_CJK.findall(text))


_ASKS_REFERENCE = re.compile(
    r"参考文献|参考资料|文献|出处|引用|引文|DOI|原文|期刊|发表在|发表于|发表时间|出版|图\s*\d|表\s*\d|"
    # Who wrote it and when: the reference entry names its authors and year.
    r"谁写的|作者是谁|作者有哪些|哪些作者|"
    r"\breferences?\b|\bcitations?\b|\bcite\b|\bsource\b|\bbibliograph|\bjournal\b|\bfigure\b|\bwho wrote\b|\bauthors?\b|\bpublished\b",
    re.IGNORECASE,
)
# "为什么" ending a question ("生命数耗完即算为什么？") is "为 + 什么" (counts as what), not "why".
_ASKS_REASON = re.compile(r"为什么(?!\W*$)|为何(?!\W*$)|原因|何以|怎么会|为啥|\bwhy\b|\breasons?\b", re.IGNORECASE)
# Words that give a reason or a cause in an answer sentence.
REASON_CUES = re.compile(r"因为|由于|原因|源于|归因|因此|所以|导致|造成|为了|因而|故而|以致|在于|because|due to|owing to|caused", re.I)


def asks_for_reference(question: str) -> bool:
    """Whether the question asks about the documents' references or figures: ``"这篇综述的参考文献是哪篇？"`` -> True."""
    return bool(_ASKS_REFERENCE.search(question))


# Words that name the document itself ("这篇综述", "原文", "the review") or ask for something ("列出",
# "请"), not what a reference is wanted about.
_THE_DOCUMENT = re.compile(
    r"这一?篇|本篇|本文|该文|此文|原文|文章|综述|论文|作者|发表|刊登|列出|列举|给出|告诉我|请问|请|帮我|"
    r"\b(?:this|the)\s+(?:review|article|paper|document|text)\b|\bpublished\b|\bwrote\b|\bwritten\b|\bgive me\b|"
    r"\blist\b|\bdoes\b|\bdo\b",
    re.IGNORECASE,
)


def reference_topic(question: str) -> str:
    """What a question asking for a reference wants it about: the question without its question words,
    the words asking for a reference and those naming the document itself. ``"这篇综述引用了哪些参考文献？"``
    -> nothing (the document's own references); ``"推荐几篇关于量子计算的参考文献"`` -> "推荐几篇关于量子计算"."""
    return _THE_DOCUMENT.sub(" ", _ASKS_REFERENCE.sub(" ", QUESTION_WORDS.sub(" ", question))).strip()


def asks_for_reason(question: str) -> bool:
    """Whether the question asks why: ``"为什么Bang和Chung的研究结论不一致？"`` -> True."""
    return bool(_ASKS_REASON.search(question))


# "什么是X？", "X是什么？", "X指的是什么？": a question asking what X is.
_DEFINITION_QUESTIONS = (
    re.compile(r"^(?:请问)?\s*(?:什么是|何谓|什么叫做?)\s*(?P<term>[^？?，,。；;]{1,24}?)\s*[？?。]?\s*$"),
    re.compile(r"^(?:请问)?\s*(?P<term>[^？?，,。；;]{1,24}?)\s*(?:是什么|是指什么|指的是什么|指什么|是啥)\s*[？?。]?\s*$"),
)


def defined_term(question: str) -> str | None:
    """What a question asks the definition of: ``"什么是标准杆？"`` -> ``"标准杆"``, ``"MSC是什么？"`` -> ``"MSC"``;
    None for other questions (``"昌昌是什么王国的首都？"``)."""
    for pattern in _DEFINITION_QUESTIONS:
        match = pattern.match(question.strip())
        if match:
            term = match["term"].strip("“”\"'「」 ")
            return term or None
    return None


def question_focus(question: str) -> str:
    """The question without its question words: ``"黄鳍紫鱼是什么颜色？"`` -> ``"黄鳍紫鱼是 颜色 "``."""
    return QUESTION_WORDS.sub(" ", question)


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
