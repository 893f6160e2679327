"""Unit tests of chunking (rag.ingest.chunks): sections, spans, size, overlap, ids and citability."""

from __future__ import annotations

import hashlib
import os
import re
from itertools import groupby
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.ingest.chunks import Chunk, chunk_documents
from rag.config import Settings
from rag.ingest.corpus import Document, Sentence, load_document, read_text
from rag.indexing.index import structure_rules

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "corpus" / "msc-neuro-review.zh.txt"
ID = re.compile(r"^(?P<doc>.+)#(?P<start>\d+)-(?P<end>\d+)$")


@pytest.fixture(autouse=True)
def _no_rag_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)


def make_doc(doc_id: str, sections: list[tuple[str, list[int]]], gap: int = 1, noncitable_from: int | None = None) -> Document:
    """A document built directly: each section is (name, sentence lengths); sentences separated by ``gap`` spaces.

    Sentence ``k`` (counted over the document) is non-citable from ``noncitable_from`` on.
    """
    parts: list[str] = []
    pos = 0
    sentences = []
    k = 0
    for name, lengths in sections:
        head = name + "\n"
        parts.append(head)
        pos += len(head)
        for n in lengths:
            body = "字" * (n - 1) + "。"
            sentences.append(Sentence(doc_id, pos, pos + n, name, noncitable_from is None or k < noncitable_from))
            parts.append(body + " " * gap)
            pos += n + gap
            k += 1
        parts.append("\n")
        pos += 1
    text = "".join(parts)
    for s in sentences:
        assert len(text[s.start:s.end]) == s.end - s.start
    return Document(doc_id, text, hashlib.sha256(text.encode()).hexdigest(), tuple(sentences))


def check_invariants(docs: list[Document], max_chars: int, overlap: int) -> tuple[list[Sentence], list[Chunk]]:
    sentences, chunks = chunk_documents(docs, max_chars, overlap)
    by_id = {d.doc_id: d for d in docs}
    citable = [s for d in docs for s in d.sentences if s.citable]
    assert sentences == citable
    covered = set()
    for c in chunks:
        assert c.sentence_ids, c
        members = [sentences[i] for i in c.sentence_ids]
        # one document, one section
        assert {m.doc_id for m in members} == {c.doc_id}
        assert {m.section for m in members} == {c.section}
        # consecutive sentences
        assert list(c.sentence_ids) == list(range(c.sentence_ids[0], c.sentence_ids[-1] + 1))
        # span = first sentence start .. last sentence end
        assert (c.start, c.end) == (members[0].start, members[-1].end)
        assert 0 <= c.start < c.end <= len(by_id[c.doc_id].text)
        # size limit, unless a single sentence is longer on its own
        assert c.end - c.start <= max_chars or len(c.sentence_ids) == 1
        # id
        m = ID.match(c.id)
        assert m and (m["doc"], int(m["start"]), int(m["end"])) == (c.doc_id, c.start, c.end)
        assert all(s.citable for s in members)
        covered.update(c.sentence_ids)
    assert covered == set(range(len(sentences)))  # every citable sentence is in a chunk
    assert len({c.id for c in chunks}) == len(chunks)
    # consecutive chunks of one section: overlap and greediness
    for _, run in groupby(chunks, key=lambda c: (c.doc_id, c.section)):
        run = list(run)
        for a, b in zip(run, run[1:]):
            shared = set(a.sentence_ids) & set(b.sentence_ids)
            start = max(a.sentence_ids[-1] + 1 - overlap, a.sentence_ids[0] + 1)
            new = a.sentence_ids[-1] + 1
            if start < new and sentences[new].end - sentences[start].start > max_chars:
                # the overlap and the next sentence do not fit together: the overlap is dropped
                assert not shared and b.sentence_ids[0] == new, (a.sentence_ids, b.sentence_ids)
            else:
                assert len(shared) == min(overlap, len(a.sentence_ids) - 1), (a.sentence_ids, b.sentence_ids)
                assert b.sentence_ids[0] == start
            # greedy: the next sentence would not have fitted into a
            nxt = sentences[a.sentence_ids[-1] + 1]
            assert nxt.end - a.start > max_chars
        # the run ends with the section's last sentence
        last = run[-1].sentence_ids[-1]
        assert last + 1 == len(sentences) or (sentences[last + 1].doc_id, sentences[last + 1].section) != (
            run[-1].doc_id,
            run[-1].section,
        )
    return sentences, chunks


# ---------------------------------------------------------------- examples


def test_chunks_do_not_cross_sections():
    doc = make_doc("d.txt", [("甲", [10, 10, 10]), ("乙", [10, 10])])
    sentences, chunks = check_invariants([doc], 1000, 1)
    assert [(c.section, c.sentence_ids) for c in chunks] == [("甲", (0, 1, 2)), ("乙", (3, 4))]


def test_chunks_do_not_cross_documents():
    a = make_doc("a.txt", [("", [10, 10])])
    b = make_doc("b.txt", [("", [10, 10])])
    _, chunks = check_invariants([a, b], 1000, 1)
    assert [(c.doc_id, c.sentence_ids) for c in chunks] == [("a.txt", (0, 1)), ("b.txt", (2, 3))]


def test_chunks_span_is_first_start_to_last_end():
    doc = make_doc("d.txt", [("节", [5, 7, 9])], gap=3)
    sentences, (chunk,) = check_invariants([doc], 1000, 0)
    assert (chunk.start, chunk.end) == (sentences[0].start, sentences[2].end)
    assert doc.text[chunk.start:chunk.end] == "字字字字。   字字字字字字。   字字字字字字字字。"


def test_chunks_size_limit_respected_with_overlap():
    doc = make_doc("d.txt", [("节", [50] * 10)], gap=0)
    _, chunks = check_invariants([doc], 120, 1)
    assert [c.sentence_ids for c in chunks] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9)]


def test_chunks_long_sentence_alone_may_exceed_limit():
    doc = make_doc("d.txt", [("节", [10, 300, 10])])
    _, chunks = check_invariants([doc], 100, 1)
    assert [c.sentence_ids for c in chunks] == [(0,), (1,), (2,)]
    assert chunks[1].end - chunks[1].start == 300


def test_chunks_overlap_exactly_n_sentences_when_room():
    doc = make_doc("d.txt", [("节", [10] * 12)], gap=0)
    for overlap in (0, 1, 2, 3):
        _, chunks = check_invariants([doc], 50, overlap)
        for a, b in zip(chunks, chunks[1:]):
            assert len(set(a.sentence_ids) & set(b.sentence_ids)) == overlap


def test_chunks_overlap_larger_than_window_still_advances():
    doc = make_doc("d.txt", [("节", [10] * 6)], gap=0)
    _, chunks = check_invariants([doc], 20, 5)
    assert [c.sentence_ids for c in chunks] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]


def test_chunks_ids_stable_and_well_formed():
    docs = [make_doc("sub/a.txt", [("一", [30] * 8), ("二", [40] * 5)]), make_doc("b.md", [("", [20] * 4)])]
    first = chunk_documents(docs, 100, 1)
    second = chunk_documents(docs, 100, 1)
    assert first == second
    for c in first[1]:
        assert c.id == f"{c.doc_id}#{c.start}-{c.end}"
        assert ID.match(c.id)


def test_chunks_ids_stable_on_real_review():
    s = Settings(corpus_dir=REVIEW.parent, index_dir=Path("unused"), embedding_model="hash-test")
    docs1 = [load_document(REVIEW.name, read_text(REVIEW), structure_rules(s))]
    docs2 = [load_document(REVIEW.name, read_text(REVIEW), structure_rules(s))]
    _, c1 = check_invariants(docs1, s.chunk_max_chars, s.chunk_overlap_sentences)
    _, c2 = check_invariants(docs2, s.chunk_max_chars, s.chunk_overlap_sentences)
    assert [c.id for c in c1] == [c.id for c in c2]
    assert all(c.id.startswith(f"{REVIEW.name}#") for c in c1)


def test_chunks_noncitable_sentences_never_in_chunk():
    doc = make_doc("d.txt", [("节", [10, 10, 10]), ("尾", [10, 10])], noncitable_from=3)
    sentences, chunks = check_invariants([doc], 1000, 1)
    assert len(sentences) == 3
    assert [c.sentence_ids for c in chunks] == [(0, 1, 2)]
    assert all(c.end <= doc.sentences[2].end for c in chunks)


def test_chunks_noncitable_tail_of_real_review_never_in_chunk():
    s = Settings(corpus_dir=REVIEW.parent, index_dir=Path("unused"), embedding_model="hash-test")
    doc = load_document(REVIEW.name, read_text(REVIEW), structure_rules(s))
    sentences, chunks = check_invariants([doc], s.chunk_max_chars, s.chunk_overlap_sentences)
    tail_start = min(x.start for x in doc.sentences if not x.citable)
    for c in chunks:
        assert c.end <= tail_start
        assert "免责说明" not in doc.text[c.start:c.end]


def test_chunks_all_noncitable_gives_nothing():
    doc = make_doc("d.txt", [("节", [10, 10])], noncitable_from=0)
    assert chunk_documents([doc], 100, 1) == ([], [])


def test_chunks_empty_corpus_gives_nothing():
    assert chunk_documents([], 100, 1) == ([], [])


@pytest.mark.parametrize("max_chars, overlap", [(0, 0), (-1, 1), (100, -1), (0, -1)])
def test_chunks_bad_sizes_raise_valueerror(max_chars, overlap):
    doc = make_doc("d.txt", [("节", [10])])
    with pytest.raises(ValueError):
        chunk_documents([doc], max_chars, overlap)


def test_chunks_every_citable_sentence_in_some_chunk_real_review():
    s = Settings(corpus_dir=REVIEW.parent, index_dir=Path("unused"), embedding_model="hash-test")
    doc = load_document(REVIEW.name, read_text(REVIEW), structure_rules(s))
    for max_chars, overlap in ((220, 1), (50, 0), (1, 0), (1000, 3)):
        check_invariants([doc], max_chars, overlap)


def test_chunks_each_chunk_adds_a_new_sentence():
    doc = make_doc("d.txt", [("节", [10, 200, 100])], gap=0)
    _, chunks = chunk_documents([doc], 220, 1)
    for a, b in zip(chunks, chunks[1:]):
        assert b.sentence_ids[-1] > a.sentence_ids[-1], [c.sentence_ids for c in chunks]


# ---------------------------------------------------------------- properties

section_st = st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(st.lists(section_st, min_size=1, max_size=4), min_size=1, max_size=3),
    max_chars=st.integers(min_value=1, max_value=400),
    overlap=st.integers(min_value=0, max_value=4),
    gap=st.integers(min_value=0, max_value=2),
    tail=st.none() | st.integers(min_value=0, max_value=20),
)
def test_chunks_invariants_hold_for_random_documents(docs, max_chars, overlap, gap, tail):
    built = [
        make_doc(f"d{i}.txt", [(f"节{j}", lengths) for j, lengths in enumerate(sections)], gap=gap, noncitable_from=tail)
        for i, sections in enumerate(docs)
    ]
    check_invariants(built, max_chars, overlap)
