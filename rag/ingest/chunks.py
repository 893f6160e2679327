"""Chunks: runs of consecutive sentences of one section, with overlap, each a span of its document."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

import numpy as np

from rag.ingest.corpus import Document
from rag.ingest.rows import LazyRows


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage; ``sentence_ids`` index the corpus-wide sentence table."""

    id: str
    doc_id: str
    section: str
    start: int
    end: int
    sentence_ids: tuple[int, ...]


class ChunkTable(LazyRows):
    """Chunks kept as numpy columns, each ``Chunk`` made when it is read (a list stand-in, as
    ``SentenceTable`` is for sentences). A chunk's id is ``"{doc_id}#{start}-{end}"``, as
    ``chunk_documents`` names it, so it is not stored; its sentence ids are
    ``ids[offsets[i]:offsets[i + 1]]``.
    """

    noun = "chunk row"

    def __init__(self, doc_ids: list[str], sections: list[str], doc: np.ndarray, start: np.ndarray, end: np.ndarray,
                 section: np.ndarray, ids: np.ndarray, offsets: np.ndarray):
        self.doc_ids, self.sections = doc_ids, sections
        self.doc, self.start, self.end, self.section, self.ids, self.offsets = doc, start, end, section, ids, offsets

    def __len__(self) -> int:
        return len(self.doc)

    def _row(self, i: int) -> Chunk:
        doc_id, start, end = self.doc_ids[self.doc[i]], int(self.start[i]), int(self.end[i])
        ids = tuple(self.ids[self.offsets[i]:self.offsets[i + 1]].tolist())
        return Chunk(f"{doc_id}#{start}-{end}", doc_id, self.sections[self.section[i]], start, end, ids)

    def __repr__(self) -> str:
        return f"ChunkTable({len(self)} chunks)"


def chunk_documents(
    docs: list[Document], max_chars: int, overlap: int
) -> tuple[list, list[Chunk]]:
    """The corpus-wide table of citable sentences and the chunks built over it.

    Only citable sentences are chunked: the non-citable tail can never be retrieved.
    """
    if max_chars < 1 or overlap < 0:
        raise ValueError("chunk size must be positive and overlap non-negative")
    sentences = [s for d in docs for s in d.sentences if s.citable]
    chunks: list[Chunk] = []
    numbered = list(enumerate(sentences))
    for _, run in groupby(numbered, key=lambda p: (p[1].doc_id, p[1].section)):
        chunks.extend(_chunk_run(list(run), max_chars, overlap))
    return sentences, chunks


def _chunk_run(run: list, max_chars: int, overlap: int) -> list[Chunk]:
    """Greedy windows over one section's sentences: fill up to ``max_chars``, then step back ``overlap``.

    Every chunk adds at least one sentence the previous one lacked: when the overlap and
    the next sentence do not fit together, the overlap is dropped for that step.
    """
    chunks = []
    i, covered = 0, 0  # covered: sentences [0, covered) are already in some chunk
    while covered < len(run):
        j = _window_end(run, i, max_chars)
        if j <= covered:
            i = covered
            j = _window_end(run, i, max_chars)
        window = run[i:j]
        first, last = window[0][1], window[-1][1]
        chunks.append(
            Chunk(
                id=f"{first.doc_id}#{first.start}-{last.end}",
                doc_id=first.doc_id,
                section=first.section,
                start=first.start,
                end=last.end,
                sentence_ids=tuple(k for k, _ in window),
            )
        )
        covered = j
        i = max(j - overlap, i + 1)
    return chunks


def _window_end(run: list, i: int, max_chars: int) -> int:
    """End (exclusive) of the longest run of sentences from ``i`` within ``max_chars`` (at least one)."""
    j = i + 1
    while j < len(run) and run[j][1].end - run[i][1].start <= max_chars:
        j += 1
    return j
