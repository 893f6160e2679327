"""Expected answer types: a question asking "how much", "how long" or "how many" is only
answered by a passage that holds a value of that kind.

Classic question answering checks this before answering; it catches questions about a
real study's detail that the documents never give ("Chung的研究剂量是多少？" when the text
names no dose), which vector similarity cannot tell from answerable ones.
"""

from __future__ import annotations

import re

_NUM = r"(?:\d[\d.,×⁰¹²³⁴⁵⁶⁷⁸⁹^–\-~/]*|[一二两三四五六七八九十百千万亿]+)"

# (what the question asks, how it asks in Chinese or English, what a value looks like)
ANSWER_TYPES: tuple[tuple[str, re.Pattern, re.Pattern], ...] = (
    (
        "dose",
        re.compile(r"剂量|多少个?(细胞|MSCs?|颗粒|外泌体)|\bdose|\bdosage|how many cells", re.I),
        re.compile(_NUM + r"\s*(?:万|亿)?\s*(?:个)?(?:细胞|颗粒)|" + _NUM + r"\s*(?:mL|ml|mg|μg|ug)|/公斤|/kg|剂量组", re.I),
    ),
    (
        "duration",
        re.compile(r"多久|多长时间|多长|随访.{0,4}(几|多少)|几(天|周|个月|年)|how long|how many (days|weeks|months|years)", re.I),
        # A calendar year ("2023年") is a date, not a duration.
        re.compile(r"(?<!\d)(?!(?:19|20)\d\d年)" + _NUM + r"\s*(?:个)?(?:天|日|周|星期|月|年|小时|days?|weeks?|months?|years?)", re.I),
    ),
    (
        "times",
        re.compile(r"(几|多少)次|how (many times|often)", re.I),
        re.compile(r"[一二两三四五六七八九十\d]+\s*次|每(天|日|周|月)", re.I),
    ),
    (
        "count",
        re.compile(r"(多少|几)(例|名|位|个人|人|个患者|名患者)|样本量|纳入了?(多少|几)|how many (patients|participants|subjects|people)", re.I),
        re.compile(_NUM + r"\s*(?:例|名|位|人)|样本量", re.I),
    ),
    (
        "cost",
        re.compile(r"多少钱|费用|价格|花费|成本|\bcost|\bprice", re.I),
        re.compile(_NUM + r"\s*(?:元|美元|欧元|万元)|\$\s*\d|费用|价格", re.I),
    ),
)


def asked_types(question: str) -> list[str]:
    """The kinds of value a question asks for: ``"剂量是多少？"`` -> ``["dose"]``."""
    return [name for name, asks, _ in ANSWER_TYPES if asks.search(question)]


def holds_type(text: str, kind: str) -> bool:
    """Whether ``text`` contains a value of the given kind: ``"1×10⁸个细胞"`` holds a dose."""
    for name, _, value in ANSWER_TYPES:
        if name == kind:
            return bool(value.search(text))
    raise ValueError(f"unknown answer type {kind!r}")


def missing_types(question: str, passages: list[str]) -> list[str]:
    """The asked kinds of value that none of the passages holds."""
    joined = "\n".join(passages)
    return [kind for kind in asked_types(question) if not holds_type(joined, kind)]
