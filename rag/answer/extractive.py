"""Extractive answers: choose the corpus sentences that answer a question, each cited.

No model writes anything: the answer is made of exact sentences of the documents,
grouped into passages (a sentence plus the neighbour it leans on), each with a marker [n].
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

from rag.answer import sentence_rank
from rag.answer.answer_types import asked_types, holds_type, missing_types
from rag.config import SelectionParams
from rag.indexing.corpus_text import corpus_text
from rag.indexing.index import Index
from rag.ingest.corpus import BODY, REFERENCE, is_reference_entry
from rag.answer.language import (asks_for_reference, asks_for_several, defined_term, is_english, named_entities,
                                  reference_topic)
from rag.answer.retriever import Retrieval
from rag.answer.translation import chinese_renderings, english_word_renderings
from rag.ingest.segment import content_terms, cut, in_dictionary, specific_terms, stopwords
from rag.answer.sentence_rank import LinearRanker

# A sentence opening with one of these leans on the sentence before it
# ("该研究…", "其中…", "患者接受了…"), so it is quoted together with it.
_LEANS_BACK = re.compile(r"^(该|这|此|其|上述|患者|结果|作者|研究共|研究者|他们|它们|同时|每次)")
_CLAUSE_END = (";", "；")
# A short sentence followed by one that leans back is an introduction ("Chung等人…得出了相矛盾的结果。").
SHORT_INTRO_CHARS = 60


@dataclass(frozen=True)
class Passage:
    """A run of consecutive sentences quoted as one cited passage."""

    first: int  # sentence ids, inclusive
    last: int
    score: float


@dataclass(frozen=True)
class Selection:
    """The chosen passages, the answering one first, and the evidence used to decide answerability."""

    passages: list[Passage]
    features: dict[str, float]


def select(index: Index, retrieval: Retrieval, question: str, ranker: LinearRanker, params: SelectionParams) -> Selection:
    """Choose the passages that answer ``question`` from the retrieved chunks, the answering one first."""
    max_passages, several_ratio, second_ratio = params.max_passages, params.several_ratio, params.second_ratio
    candidates, dense, lexical, rank_features = candidate_features(index, retrieval, question)
    if not candidates:
        return Selection([], {"top_dense": 0.0, "coverage": 0.0, "top_bm25": 0.0, "unknown_term": 1.0, "missing_type": 1.0,
                              "clarity": 0.0, "english": float(is_english(question)), "known_share": 0.0,
                              "typed_answer": 0.0, "names_found": 0.0})
    relevance = _relevance(ranker.scores(rank_features))

    order = sorted(range(len(candidates)), key=lambda i: -relevance[i])
    own_references = asks_for_own_references(question)
    asked_first = _asked_first(index, question, candidates, own_references)
    if asked_first is not None:
        order.sort(key=asked_first)  # stable: the ranker's order among what the question asks first
        relevance[order[0]] = max(relevance)  # so that it stays first when passages are ordered
    best = relevance[order[0]]
    picks = {candidates[order[0]]: float(best)}
    if asks_for_several(question):
        # Comparisons and lists: every named study gets its own sentence ...
        per_entity = _one_per_entity(index, question, retrieval, picks)
        position = {sid: i for i, sid in enumerate(candidates)}
        for sid in per_entity:  # found outside the retrieved chunks, it ranks below them
            picks[sid] = float(relevance[position[sid]]) if sid in position else 0.0
        # ... and, for lists that name no study, other strong sentences join up to the limit.
        for i in order[1:] if not per_entity else []:
            if len(picks) >= max_passages:
                break
            if relevance[i] >= several_ratio * best:
                picks.setdefault(candidates[i], float(relevance[i]))
    elif len(order) > 1 and relevance[order[1]] >= second_ratio * best:
        # A single question often needs two sentences (a study and its result).
        picks[candidates[order[1]]] = float(relevance[order[1]])

    picks = _without_restatements(index, dict(list(picks.items())[:max_passages]))
    for kind in missing_types(question, [index.sentence_text(i) for i in picks]):
        holder = _type_holder(index, kind, [candidates[i] for i in order], picks)
        if holder is not None:
            picks[holder] = float(relevance[candidates.index(holder)])
    passages = sorted(_expand(index, list(picks.items()), neighbours=params.neighbours), key=lambda p: -p.score)
    if own_references:
        passages = _whole_lines(index, passages)
    texts = [_passage_text(index, p) for p in passages]
    missing = missing_types(question, texts)
    features = {
        "top_dense": float(dense.max()),
        "top_bm25": float(lexical.max()),
        "coverage": _coverage(index, question, passages),
        "unknown_term": float(bool(unknown_terms(index, question))),
        "missing_type": float(bool(missing)),
        # The positive side of the same check: the question asks for a kind of value and the
        # quoted passages hold one. Short questions ("Levy等人纳入了多少例患者？") share few words
        # and little vector similarity with their answer; this is what they do have.
        "typed_answer": float(bool(asked_types(question)) and not missing),
        "names_found": _names_found(question, texts),
        "clarity": retrieval.clarity,
        "english": float(is_english(question)),
        "known_share": known_share(index, question),
        **_reference_features(index, question, passages),
    }
    return Selection(passages, features)


def _asked_first(index: Index, question: str, candidates: list[int], own_references: bool):
    """A sort key (over candidate positions, False first) for the candidates a question's form asks
    for before the ranker's best, or None when it asks for nothing in particular:

    - "这篇综述引用了哪些参考文献？" asks for the documents' own reference list, whose entries the ranker,
      fitted on questions about the text, puts below the sentences around them (and below captions
      and cited works' titles, which are reference lines too);
    - "结论是什么？" asks what the section headed 结论 says, not for a sentence that happens to use the
      word ("尚难以就疗效得出明确结论") elsewhere;
    - "什么是标准杆？" is answered by the sentence that says what it is ("标准杆，是…", "间充质干细胞(MSCs)
      是一类…"), not by one that only uses the word.
    """
    sentences = index.sentences
    if own_references:
        return lambda i: (sentences[candidates[i]].role != REFERENCE,
                          not is_reference_entry(index.sentence_text(candidates[i]), sentences[candidates[i]].section))
    section = asked_section(index, question, candidates)
    if section is not None:
        return lambda i: sentences[candidates[i]].section != section
    term = defined_term(question)
    if term is not None:
        return lambda i: not defines(index.sentence_text(candidates[i]), term)
    return None


# A heading is the one a question asks about when the question's topic words make up at least this share of its own.
HEADING_SHARE = 0.5


def asked_section(index: Index, question: str, candidates: list[int]) -> str | None:
    """The heading of the candidates' section a question names, or None: ``"结论是什么？"`` -> "结论".

    The question's topic words must all be in the heading, and make up at least HEADING_SHARE of
    the heading's own ("间充质干细胞治疗脊髓损伤的临床案例有哪些？" names that section; "卒中" alone
    does not name a long heading that mentions it)."""
    terms = set(content_terms(question))
    if not terms:
        return None
    for section in dict.fromkeys(index.sentences[sid].section for sid in candidates):
        heading = set(content_terms(section)) if section else set()
        if heading and terms <= heading and len(terms) >= HEADING_SHARE * len(heading):
            return section
    return None


def defines(sentence: str, term: str) -> bool:
    """Whether ``sentence`` says what ``term`` is: it opens with the term, or with a name and the term
    as its abbreviation in brackets, then a defining verb: ``("标准杆，是一个高尔夫球运动术语…", "标准杆")``
    -> True; ``("间充质干细胞(MSCs)是一类…", "MSC")`` -> True."""
    word = re.escape(term)
    opens = rf"^(?:[“\"「《]?{word}[”\"」》]?\s*(?:[（(][^）)]{{0,60}}[）)])?|[^，,。；;]{{1,30}}?[（(]\s*{word}s?\s*[）)])"
    return bool(re.match(opens + _DEFINING_VERB, sentence, re.IGNORECASE))


# What follows a term in the sentence that defines it: "是", "是指", "指", "即", "为", "，是", "又称…，是".
_DEFINING_VERB = r"\s*[，,]?\s*(?:是|指|即|为|乃|系|就是|称为|又称)"


def asks_for_own_references(question: str) -> bool:
    """Whether a question asks for the documents' own references, about nothing else:
    ``"这篇文章的DOI是什么？"`` -> True; ``"推荐几篇关于量子计算的参考文献"`` -> False."""
    return asks_for_reference(question) and not content_terms(reference_topic(question))


# Reference entries and definitions that retrieval missed are looked for in the documents of this many
# of the best retrieved chunks.
BEST_DOCUMENTS = 2


def _best_documents(index: Index, retrieval: Retrieval) -> list[str]:
    """The documents of the best retrieved chunks, best first, BEST_DOCUMENTS of them."""
    return list(dict.fromkeys(index.chunks[hit.chunk].doc_id for hit in retrieval.hits))[:BEST_DOCUMENTS]


def _reference_entries(index: Index, retrieval: Retrieval) -> list[int]:
    """The reference-list entries of the documents the best chunks come from: "原文发表在哪个期刊？"
    retrieves sentences that talk of publishing, rarely the list at the document's end."""
    return [sid for doc_id in _best_documents(index, retrieval) for sid in index.layout.sentence_ids(doc_id)
            if index.sentences[sid].role == REFERENCE
            and is_reference_entry(index.sentence_text(sid), index.sentences[sid].section)]


def _definitions(index: Index, retrieval: Retrieval, term: str) -> list[int]:
    """The sentences of the best chunks' documents that say what ``term`` is: "MSC是什么？" retrieves
    sentences that use MSCs everywhere, not always the one that introduces them."""
    lowered = term.lower()
    return [sid for doc_id in _best_documents(index, retrieval) for sid in index.layout.sentence_ids(doc_id)
            if index.sentences[sid].role == BODY and lowered in (text := index.sentence_text(sid)).lower()
            and defines(text, term)]


def _whole_lines(index: Index, passages: list[Passage]) -> list[Passage]:
    """Each passage grown to the whole lines it is on, once each: a reference entry is one line that
    the splitter cuts at its full stops ("…新机遇。" / "Biologics 2025 , 5 , 37."), and is quoted whole."""
    def joined(a: int, b: int) -> bool:  # sentences a and b = a + 1 are on one line of one document
        x, y = index.sentences[a], index.sentences[b]
        return x.doc_id == y.doc_id and "\n" not in index.text(x.doc_id, x.end, y.start)

    grown: dict[tuple[int, int], Passage] = {}
    for p in passages:
        first, last = p.first, p.last
        while first > 0 and joined(first - 1, first):
            first -= 1
        while last + 1 < len(index.sentences) and joined(last, last + 1):
            last += 1
        grown.setdefault((first, last), Passage(first, last, p.score))
    return list(grown.values())


def _reference_features(index: Index, question: str, passages: list[Passage]) -> dict[str, float]:
    """For a question asking for a reference whose first passage is a reference line (an entry, a DOI
    line, a caption): ``reference_answer`` 1 when every word of what it wants the reference about is
    one the documents use, or when it wants the documents' own ("这篇文章的DOI是什么？") and the
    passage is an entry of their reference list; ``reference_off_topic`` 1 when it wants one about
    something else ("推荐几篇关于量子计算的参考文献": the documents' reference is not about that).
    Neither otherwise (the rule decides)."""
    if not (passages and asks_for_reference(question) and index.sentences[passages[0].first].role == REFERENCE):
        return {}
    if asks_for_own_references(question):
        first = index.sentences[passages[0].first]
        # A cited work's title or a caption is not what "the documents' references" asks for.
        return {"reference_answer": 1.0} if is_reference_entry(index.sentence_text(passages[0].first), first.section) else {}
    on_topic = known_share(index, reference_topic(question)) >= 1.0 and not unknown_terms(index, question)
    return {"reference_answer": float(on_topic), "reference_off_topic": float(not on_topic)}


def candidate_features(index: Index, retrieval: Retrieval, question: str):
    """The candidate sentences, their vector and BM25 scores, and their ranker features (what
    ``select`` ranks, and what ``rag fit`` fits the ranker on)."""
    candidates = _candidates(index, retrieval, with_references=asks_for_reference(question))
    if asks_for_own_references(question):
        retrieved = set(candidates)
        candidates += [sid for sid in _reference_entries(index, retrieval) if sid not in retrieved]
    elif (term := defined_term(question)) is not None:
        retrieved = set(candidates)
        candidates += [sid for sid in _definitions(index, retrieval, term) if sid not in retrieved]
    if not candidates:
        return candidates, np.zeros(0), np.zeros(0), np.zeros((0, len(sentence_rank.FEATURES)))
    dense = index.sentence_vectors[candidates] @ retrieval.query_vector
    lexical = index.sentence_bm25.scores_of(question, candidates)
    return candidates, dense, lexical, sentence_rank.features(index, retrieval, question, candidates, dense, lexical)


def _without_restatements(index: Index, picks: dict[int, float]) -> dict[int, float]:
    """The picks without any that restate a better one: an answer never says the same thing twice.

    (Keeping the longer of the two instead was measured: 1 point of CMRC ans@1 lower.)
    """
    kept: dict[int, float] = {}
    for sid, score in sorted(picks.items(), key=lambda p: -p[1]):
        if not any(_restates(index, sid, other) or _restates(index, other, sid) for other in kept):
            kept[sid] = score
    return kept


def _relevance(scores: np.ndarray) -> np.ndarray:
    """Ranker scores as shares of the best (a softmax scaled so the best is 1)."""
    return np.exp(scores - scores.max())


# A value the question asks for is taken from this close to a chosen sentence, or from
# one of this many best-ranked candidates: further away it likely belongs to another study.
TYPE_NEIGHBOURHOOD = 2
TYPE_TOP_RANKS = 0


def _type_holder(index: Index, kind: str, ranked: list[int], picks: dict[int, float]) -> int | None:
    """The best-ranked candidate sentence holding a value of ``kind`` near the chosen ones."""
    for rank, sid in enumerate(ranked):
        near = any(abs(sid - p) <= TYPE_NEIGHBOURHOOD and _same_section(index, sid, p) for p in picks)
        if (near or rank < TYPE_TOP_RANKS) and holds_type(index.sentence_text(sid), kind):
            return sid
    return None


def _one_per_entity(index: Index, question: str, retrieval: Retrieval, picks: dict[int, float]) -> list[int]:
    """For "Bang和Chung…", the sentence closest to the question among those naming each study alone.

    All sentences are searched, not only the retrieved ones: a study's own result is
    often in a chunk that a comparison question does not retrieve.
    """
    names = named_entities(question)
    names = [n for n in names if not n.isdigit()] or names  # years count only when no study is named
    if len(names) < 2:
        return []
    found = corpus_text(index)
    query = retrieval.query_vector
    extra: list[int] = []
    for name in names:
        others = [o.lower() for o in names if o != name]
        own = [i for i in found.sentences_holding(index, name.lower())
               if index.sentences[i].role == BODY
               and (retrieval.documents is None or index.sentences[i].doc_id in retrieval.documents)
               and not any(o in index.sentence_text(i).lower() for o in others)]
        if own:
            closeness = index.sentence_vectors[own] @ query
            best = own[int(np.argmax(closeness))]
            if best not in picks and best not in extra:
                extra.append(best)
    return extra


def _candidates(index: Index, retrieval: Retrieval, with_references: bool = False) -> list[int]:
    """Sentence ids of the retrieved chunks, best chunk first, each once.

    References, captions and titles of cited works are left out unless the question asks for
    a reference: "[1] Akhmetzyanova…" or a DOI line never answers a question about a trial.
    """
    seen: dict[int, None] = {}
    for hit in retrieval.hits:
        for sid in index.chunks[hit.chunk].sentence_ids:
            if with_references or index.sentences[sid].role == BODY:
                seen.setdefault(sid, None)
    return list(seen)


def _expand(index: Index, picks: list[tuple[int, float]], neighbours: bool) -> list[Passage]:
    """Grow each chosen sentence by the neighbour it leans on, merge overlaps, order by position."""
    spans = []
    for sid, score in picks:
        first, last = sid, sid
        if not neighbours:
            spans.append([first, last, score, sid])
            continue
        if _leans_back(index, sid) or _after_clause(index, sid):
            previous = _previous_body(index, sid)
            if not _restates(index, sid, previous):
                first = previous
        if _ends_clause(index, last):
            last = _next_same_section(index, last)
        elif len(index.sentence_text(last)) < SHORT_INTRO_CHARS and _leans_back(index, last + 1):
            following = _next_same_section(index, last)
            if _restates(index, following, last):
                first = following  # the next sentence says it again, and says more: quote that one
            last = following
        spans.append([first, last, score, sid])
    spans.sort()
    merged: list[list] = []
    for first, last, score, sid in spans:
        touching = merged and (first <= merged[-1][1] or (
            first == merged[-1][1] + 1 and not _about_different_studies(index, merged[-1][3], sid)))
        if touching and _same_section(index, merged[-1][1], first):
            merged[-1][1] = max(merged[-1][1], last)
            if score > merged[-1][2]:
                merged[-1][2:] = [score, sid]
        else:
            merged.append([first, last, score, sid])
    return [Passage(first, last, score) for first, last, score, _ in merged]


# A sentence sharing a phrase of ordinary words this long with the one before it restates it
# ("…差异可能源于多种因素。这些结果的差异可能源于…"): quoting both would say the same thing twice.
# Names (Latin letters, digits) and single dictionary words do not count: two sentences about one
# study naturally share "hUCB-MSCs" or "间充质干细胞".
RESTATED_CHARS = 5
RESTATED_WORDS = 3


def _restates(index: Index, sid: int, previous: int) -> bool:
    """Whether sentences ``sid`` and ``previous`` say the same thing in the same words."""
    if previous == sid:
        return False
    a, b = index.sentence_text(previous), index.sentence_text(sid)
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    phrase = a[match.a:match.a + match.size]
    if sum(ch.isalnum() for ch in phrase) < RESTATED_CHARS or re.search(r"[A-Za-z0-9]", phrase):
        return False
    return len([w for w in cut(phrase) if w.strip()]) >= RESTATED_WORDS


def _about_different_studies(index: Index, a: int, b: int) -> bool:
    """Whether two sentences each name studies (authors, years) and none in common: Bang's dose
    next to Levy's is two citations, not one."""
    names_a = {n.lower() for n in named_entities(index.sentence_text(a))}
    names_b = {n.lower() for n in named_entities(index.sentence_text(b))}
    return bool(names_a and names_b and not names_a & names_b)


def _leans_back(index: Index, sid: int) -> bool:
    return 0 < sid < len(index.sentences) and bool(_LEANS_BACK.match(index.sentence_text(sid)))


def _ends_clause(index: Index, sid: int) -> bool:
    return index.sentence_text(sid).endswith(_CLAUSE_END)


def _after_clause(index: Index, sid: int) -> bool:
    return sid > 0 and _same_section(index, sid - 1, sid) and _ends_clause(index, sid - 1)


def _same_section(index: Index, a: int, b: int) -> bool:
    sa, sb = index.sentences[a], index.sentences[b]
    return sa.doc_id == sb.doc_id and sa.section == sb.section


def _previous_body(index: Index, sid: int) -> int:
    """The sentence before ``sid`` in its section, stepping over one line with no sentence end (a title)."""
    prev = sid - 1
    if prev < 0 or not _same_section(index, prev, sid):
        return sid
    if prev > 0 and _same_section(index, prev - 1, sid) and not _ends_like_sentence(index.sentence_text(prev)):
        prev -= 1  # a cited work's title sits between a study and its results
    return prev


def _next_same_section(index: Index, sid: int) -> int:
    nxt = sid + 1
    return nxt if nxt < len(index.sentences) and _same_section(index, sid, nxt) else sid


def _ends_like_sentence(text: str) -> bool:
    return text.endswith(("。", "！", "？", "；", "…", ".", "!", "?", ";"))


def unknown_terms(index: Index, question: str) -> list[str]:
    """The question's precise terms (acronyms, domain-dictionary names, capitalised names) the documents never use.

    A question about "肌萎缩侧索硬化（ALS）" or "Parkinson's disease" names something the
    documents never mention: whatever looks similar in vector space is about something else.
    A name the word splitter cuts differently ("Macêdo") still counts as used when it occurs
    anywhere in the documents' text, and so does an English name whose Chinese rendering does
    ("Alzheimer" in a review that writes 阿尔茨海默病). A capitalised stopword is not a name:
    "At what stage…" capitalises "At" only because it opens the sentence.
    """
    vocab = index.sentence_bm25.document_frequencies()
    anchors = dict.fromkeys(specific_terms(question) + named_entities(question) + _numbered_labels(question))
    stop = stopwords()
    text = corpus_text(index)
    return [w for w in anchors
            if w.lower() not in stop and w.lower() not in vocab and not text.holds(w.lower())
            and not _rendering_in_text(index, chinese_renderings(w))]


_HAN = re.compile(r"[\u3400-\u9fff]+")
# A numbered figure or table: "图2" asked of documents whose figures stop at 图1 names nothing in them.
_NUMBERED_LABEL = re.compile(r"([图表])\s*(\d+)")


def _numbered_labels(question: str) -> list[str]:
    """The figures and tables a question names, as Chinese documents write them: ``"图 2显示了什么？"`` -> ["图2"]."""
    return [f"{m[1]}{m[2]}" for m in _NUMBERED_LABEL.finditer(question)]


def known_share(index: Index, question: str) -> float:
    """Share of the question's topic words that the documents use at all (0 for "今天天气怎么样？").

    A Chinese word the splitter cut differently in the question counts as used when the documents'
    text holds it, or holds it without one character the splitter glued on: in "刘七是怎么死的？"
    the word is "刘七是", while the documents, which say "刘七…", never have that word. An English
    word counts as used when the text holds one of its Chinese renderings ("vesicles" -> 囊泡).
    """
    terms = content_terms(question)
    if not terms:
        return 0.0
    vocab = index.sentence_bm25.document_frequencies()
    return sum(t in vocab or _in_text(index, t) or _rendering_in_text(index, english_word_renderings(question, t))
               for t in terms) / len(terms)


def _rendering_in_text(index: Index, renderings) -> bool:
    """Whether the documents' text holds one of an English word's Chinese renderings."""
    text = corpus_text(index)
    return any(text.holds(rendering) for rendering in renderings)


def _in_text(index: Index, term: str) -> bool:
    """Whether a Chinese ``term`` (2+ characters) occurs in the documents' text, or, when jieba's
    dictionary does not know it (a glued-on character), it less one character at either end (still
    2+). A dictionary word is not cut: a text about 多发性硬化 says nothing of 肝硬化. Latin words
    are left to the vocabulary: "us" is inside many words."""
    if not _HAN.fullmatch(term) or len(term) < 2:
        return False
    text = corpus_text(index)
    if text.holds(term):
        return True
    return len(term) >= 3 and not in_dictionary(term) and (text.holds(term[:-1]) or text.holds(term[1:]))


def _names_found(question: str, texts: list[str]) -> float:
    """1 when the question names studies or years ("Levy", "2019") and the quoted passages hold
    every one of them, else 0: the passages are about what was asked."""
    names = named_entities(question)
    joined = "\n".join(texts).lower()
    return float(bool(names) and all(name.lower() in joined for name in names))


def _passage_text(index: Index, p: Passage) -> str:
    a, b = index.sentences[p.first], index.sentences[p.last]
    return index.text(a.doc_id, a.start, b.end)


def _coverage(index: Index, question: str, passages: list[Passage]) -> float:
    """IDF-weighted share of the question's topic words found in the chosen passages.

    Words the corpus never uses weigh the most: a question about something the
    documents never mention cannot be covered, however similar its vectors look.
    """
    terms = content_terms(question)
    if not terms or not passages:
        return 0.0
    n = len(index.sentences)
    vocab = index.sentence_bm25.document_frequencies()
    text = " ".join(
        index.text(index.sentences[p.first].doc_id, index.sentences[p.first].start, index.sentences[p.last].end)
        for p in passages
    )
    # Every search term is a lower-cased piece of the text it came from, so looking for the
    # question's terms in the lower-cased passages finds what cutting the passages would (and
    # costs no jieba run per answer).
    lowered = text.lower()
    total = covered = 0.0
    for term in terms:
        weight = math.log((n + 1) / (vocab.get(term, 0) + 0.5))
        total += weight
        # An English word is also covered by one of its Chinese renderings.
        if term in lowered or any(r in lowered for r in english_word_renderings(question, term)):
            covered += weight
    return covered / total if total else 0.0
