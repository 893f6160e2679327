"""The study records of a whole index or corpus: derived per document, memoised, filtered.

An index changes one document at a time, so records are memoised by document id and text
hash, across indexes: a change re-derives only the changed document. The assembled list is
memoised on each (immutable) index. Ids are unique over the corpus (a later document's
"bang-2005" becomes "bang-2005-2").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
import re

import numpy as np

from rag.errors import BadFilter, StudyNotFound
from rag.ingest.corpus import Document
from rag.studies.fields import is_denied
from rag.studies.records import Study, extract

# Design filters: a name (English or Chinese) -> the design trait it asks for.
DESIGNS = {
    "randomised": "randomised", "randomized": "randomised", "随机": "randomised",
    "controlled": "controlled", "对照": "controlled", "blinded": "blinded", "盲法": "blinded",
    "open-label": "open_label", "open_label": "open_label", "开放标签": "open_label",
    "single-arm": "single_arm", "single_arm": "single_arm", "单臂": "single_arm",
}


# Records per (document id, text hash) of the documents last read, shared by every index of this
# process: the next index re-derives only what changed, and what left the corpus is dropped.
_BY_DOCUMENT: dict = {}


def studies_of(documents: Iterable[Document], memo: dict | None = None) -> list[Study]:
    """Every study record of the documents, in document order, ids unique over all of them."""
    global _BY_DOCUMENT
    shared = memo is None
    known = _BY_DOCUMENT if shared else memo
    # Only the records of these documents are kept, however many there are (a bound on the count
    # instead cleared everything past 20,000 documents: at 48,800 every change re-read them all).
    kept: dict = {}
    out, used = [], set()
    for doc in documents:
        key = ("studies", doc.doc_id, doc.sha256)
        records = known.get(key)
        if records is None:
            records = extract(doc)
        kept[key] = records
        for study in records:
            study_id, n = study.id, 1
            while study_id in used:
                n += 1
                study_id = f"{study.id}-{n}"
            used.add(study_id)
            out.append(study if study_id == study.id else study.model_copy(update={"id": study_id}))
    if shared:
        _BY_DOCUMENT = kept
    else:
        memo.update(kept)
    return out


def index_studies(index) -> list[Study]:
    """The study records of an index's documents (per document memoised across indexes, the whole
    list on the index, which never changes once made)."""
    return index.memoised("studies", lambda: studies_of(documents_of(index).values()))


def documents_of(index) -> Mapping[str, Document]:
    """The index's documents, each with its sentences (the mapping memoised on the index).

    A build loaded from disk keeps a document's sentences in the index's rows only (its Document
    has none); records, and the reason sentence of a contrast, are read from them. A document's
    sentences are read from the rows when it is looked up, not held: at 1M chunks holding every
    sentence as an object took gigabytes per server.
    """
    return index.memoised("documents_with_sentences", lambda: _DocumentsWithSentences(index))


class _DocumentsWithSentences(Mapping):
    """doc id -> its Document with its sentences, sliced from the index's rows on each lookup
    (the view keeps each document's rows together, in ``layout.order``)."""

    def __init__(self, index) -> None:
        self._index = index
        layout = index.layout
        ends = np.cumsum(layout.sentence_counts)
        self._rows = {doc_id: (int(end - count), int(end))
                      for doc_id, count, end in zip(layout.order, layout.sentence_counts, ends)}

    def __getitem__(self, doc_id: str) -> Document:
        doc = self._index.documents[doc_id]
        if doc.sentences or doc_id not in self._rows:
            return doc
        first, last = self._rows[doc_id]
        return replace(doc, sentences=tuple(self._index.sentences[first:last]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._index.documents)

    def __len__(self) -> int:
        return len(self._index.documents)


def matching(studies: list[Study], disease: str | None = None, design: str | None = None,
             year: int | None = None) -> list[Study]:
    """The studies whose disease names ``disease`` (a substring), whose design has ``design`` (stated,
    not denied; a phase such as "I期" matches the phase) and whose year is ``year``."""
    check_design(design)
    out = []
    for s in studies:
        if disease and not any(q is not None and disease.lower() in q.text.lower() for q in (s.disease, s.reference)):
            continue
        if design and not has_design(s, design):
            continue
        if year is not None and s.year != year:
            continue
        out.append(s)
    return out


_PHASE = re.compile(r"(?:phase\s*)?[IVⅠⅡⅢⅣ1-4]+(?:\s*/\s*[IVⅠⅡⅢⅣ1-4]+)?\s*期?", re.I)


def check_design(design: str | None) -> None:
    """Refuse a design filter that names no trait and no phase, saying which ones there are."""
    if design and design.strip().lower() not in DESIGNS and not _PHASE.fullmatch(design.strip()):
        raise BadFilter(f"unknown design {design!r}: use one of {', '.join(DESIGNS)} or a phase such as II期")


def has_design(study: Study, design: str) -> bool:
    """Whether a study states the design trait (``"randomised"``, ``"单臂"``…) or the phase (``"II期"``)."""
    trait = DESIGNS.get(design.strip().lower())
    if trait is None:
        phase = study.design.phase
        return phase is not None and phase.text.replace(" ", "").lower() == design.replace(" ", "").lower()
    quote = getattr(study.design, trait)
    return quote is not None and not is_denied(quote.text)


def find(studies: list[Study], study_id: str) -> Study:
    """The study of that id, or StudyNotFound."""
    for s in studies:
        if s.id == study_id:
            return s
    raise StudyNotFound(f"no study {study_id!r}")
