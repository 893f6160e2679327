"""The one home of jieba: word segmentation with the project's domain dictionary.

Everything that needs Chinese words (the sentence splitter, BM25, query analysis)
goes through this module, so the segmenter can be swapped in one place.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from importlib import resources

import jieba

jieba.setLogLevel(logging.WARNING)

_lock = threading.Lock()
_init_lock = threading.Lock()
_PUNCT_OR_SPACE = re.compile(r"^[\W_]+$", re.UNICODE)


def _tokenizer() -> jieba.Tokenizer:
    """The one shared tokenizer, created by the first caller while the others wait.

    Without the lock, a burst of first requests to a server each built its own (1.5 s and
    ~100 MB apiece): 32 clients stalled the server for over a minute.
    """
    with _init_lock:
        return _load_tokenizer()


def warm_up() -> None:
    """Load jieba, the domain dictionary and the part-of-speech tagger's tables now, so the
    first question does not wait for them (about 1 s each)."""
    _tokenizer()
    tagged("预热")


@lru_cache(maxsize=1)
def _load_tokenizer() -> jieba.Tokenizer:
    """A private jieba tokenizer with the domain dictionary loaded (global jieba stays untouched)."""
    tok = jieba.Tokenizer()
    with resources.as_file(resources.files("rag.data") / "userdict.txt") as path:
        tok.load_userdict(str(path))
    tok.initialize()
    return tok


_ACRONYM = re.compile(r"^[A-Z][A-Z0-9-]+$")


@lru_cache(maxsize=1)
def domain_terms() -> frozenset[str]:
    """The precise terms of the domain dictionary (diseases, cell products, routes)."""
    text = (resources.files("rag.data") / "userdict.txt").read_text(encoding="utf-8")
    return frozenset(line.split()[0] for line in text.splitlines() if line.strip())


def in_dictionary(word: str) -> bool:
    """Whether jieba's dictionary holds ``word`` as a word of its own: ``"肝硬化"`` yes; ``"刘七是"``,
    which its unknown-word model glued together in "刘七是怎么死的？", no."""
    return bool(_tokenizer().FREQ.get(word))


def specific_terms(text: str) -> list[str]:
    """Words that name one precise thing: Latin acronyms and domain-dictionary terms.

    ``"MSC治疗肌萎缩侧索硬化（ALS）"`` -> ``["MSC", "肌萎缩侧索硬化", "ALS"]``.
    """
    domain = domain_terms()
    words = [w for w, _, _ in tokenize(text)]
    return list(dict.fromkeys(w for w in words if w in domain or _ACRONYM.match(w)))


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """Function words and question words that carry no topic (Chinese and English)."""
    text = (resources.files("rag.data") / "stopwords.txt").read_text(encoding="utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip())


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """jieba tokens with their spans: ``"4.2年"`` -> ``[("4.2", 0, 3), ("年", 3, 4)]``."""
    tok = _tokenizer()
    with _lock:  # jieba's Tokenizer is not documented as thread-safe
        return list(tok.tokenize(text))


def tagged(text: str) -> list[tuple[str, str, int, int]]:
    """jieba words with their part-of-speech tags and spans: ``"张三在北京"`` -> ``[("张三", "nr", 0, 2), …]``."""
    tagger = _tagger()
    with _lock:
        pairs = list(tagger.cut(text))
    out, at = [], 0
    for word, tag in pairs:
        out.append((word, tag, at, at + len(word)))
        at += len(word)
    return out


@lru_cache(maxsize=1)
def _tagger():
    """jieba's part-of-speech tagger over the shared tokenizer (its dictionary and domain words)."""
    return tagger_over(_tokenizer())


def tagger_over(tokenizer: jieba.Tokenizer):
    """A part-of-speech tagger over ``tokenizer``, built without reading the main dictionary again."""
    import jieba.posseg

    shared = jieba.posseg.dt  # made when jieba.posseg is imported, with the main dictionary's tags read
    if tokenizer.dictionary != shared.tokenizer.dictionary:
        return jieba.posseg.POSTokenizer(tokenizer)
    # Same main dictionary: take its tag table instead of reading the file a second time (about
    # 1 s of every server's start); the domain words' tags are added from the user dictionary on
    # the first cut (makesure_userdict_loaded).
    tagger = jieba.posseg.POSTokenizer.__new__(jieba.posseg.POSTokenizer)
    tagger.tokenizer = tokenizer
    tagger.word_tag_tab = dict(shared.word_tag_tab)
    return tagger


def cut(text: str) -> list[str]:
    """Precise-mode words: ``"卒中后4.2年"`` -> ``["卒中后", "4.2", "年"]``."""
    tok = _tokenizer()
    with _lock:
        return list(tok.cut(text))


def search_terms(text: str) -> list[str]:
    """Lower-cased search-mode words without punctuation or spaces, for BM25.

    Search mode adds the shorter words inside long ones, so "干细胞" also matches
    "间充质干细胞": ``"间充质干细胞"`` -> ``["充质", "干细胞", "间充质干细胞"]`` (order may vary).
    """
    if len(text) <= CACHED_CHARS:
        return list(_question_terms(text))
    return _search_terms(text)


# A question is cut several times per answer (BM25 over chunks and over sentences, topic words,
# coverage); texts up to this length are cut once and remembered.
CACHED_CHARS = 500


@lru_cache(maxsize=2048)
def _question_terms(text: str) -> tuple[str, ...]:
    return tuple(_search_terms(text))


# "MSCs", "EVs", "NPs": capitals, then a plural s.
_ACRONYM_PLURAL = re.compile(r"[A-Z][A-Z0-9]*[A-Z]s")


def _search_terms(text: str) -> list[str]:
    tok = _tokenizer()
    with _lock:
        words = list(tok.cut_for_search(text))
    kept = [w for w in words if not _PUNCT_OR_SPACE.match(w)]
    terms = [w.lower() for w in kept]
    # "hUCB-MSCs" should also match a search for "MSCs".
    terms += [p for w in terms if "-" in w for p in w.split("-") if p]
    # An acronym's plural is also its singular: a text that writes "MSCs" answers a search for "MSC".
    terms += [p[:-1].lower() for w in kept for p in w.split("-") if _ACRONYM_PLURAL.fullmatch(p)]
    return terms


# Words that point or ask rather than name a topic: a demonstrative or question word with its
# measure word ("这篇", "该项", "每位"; "哪里", "几例", "多少岁", "第几"). jieba keeps them as one
# word, and a text that answers "这篇综述的结论是什么？" need not say 这篇 or 哪里.
_MEASURE_WORDS = "篇个种项本份位名例次些类件条段章节款场届组期年月天周岁所座家首张只处里儿样点号门股"
_POINTING_WORD = re.compile(rf"(?:[这那该此本每某各]一?|哪一?|第?几|多少)[{_MEASURE_WORDS}]?")


def content_terms(text: str) -> list[str]:
    """Distinct search terms of a question that carry its topic (stopwords, 1-char function words and
    pointing words such as "这篇" or "几例" out)."""
    seen: dict[str, None] = {}
    stop = stopwords()
    for w in search_terms(text):
        # Single characters are mostly function words ("不", "人"); digits still count.
        if w in stop or (len(w) == 1 and not w.isdigit()) or _POINTING_WORD.fullmatch(w):
            continue
        if len(w) > 2 and w[0] in _MEASURE_WORDS and w[1:] in stop:  # "篇文章" of "这篇文章" (not "个人", "名人")
            continue
        seen.setdefault(w, None)
    return list(seen)
