"""Reference strings ready for a bibliography: GB/T 7714-2015 and APA (7th edition).

Built from a document's metadata only (``rag.ingest.metadata``); a field the record lacks is
left out, never invented. Without a title the document's file name stands in for it.
"""

from __future__ import annotations

import re
from datetime import date

from rag.ingest.metadata import Metadata

_CJK = re.compile(r"[\u3400-\u9fff]")


def attach_references(spans: list, catalogue, texts: dict[str, str] | None = None) -> list:
    """``spans`` (citations or passages, changed in place) with their documents' reference strings
    (``texts``: the documents' canonical texts by id, when the caller holds them)."""
    for span in spans:
        span.references = references(catalogue.get(span.doc_id, (texts or {}).get(span.doc_id)), span.doc_id)
    return spans


def references(meta: Metadata, doc_id: str, accessed: date | None = None) -> dict[str, str]:
    """``{"gbt7714": …, "apa": …}`` for a document."""
    return {"gbt7714": gbt7714(meta, doc_id, accessed), "apa": apa(meta, doc_id)}


def gbt7714(meta: Metadata, doc_id: str, accessed: date | None = None) -> str:
    """``AKHMETZYANOVA E, SHULMAN I, FAKHRUTDINOVA T, 等. 题名[J]. Biologics, 2025, 5: 37. DOI:10.3390/x.``"""
    title = meta.title or doc_id
    kind = "J" if meta.journal and not meta.url else "EB/OL" if meta.url else "Z"
    parts = []
    names = [_gbt_name(a) for a in meta.authors]
    if names:
        chinese = any(_CJK.search(a) for a in meta.authors)
        shown = ", ".join(names[:3]) + ((", 等" if chinese else ", et al") if len(names) > 3 else "")
        parts.append(shown + ". ")
    parts.append(f"{title}[{kind}]")
    if kind == "J":
        where = f". {meta.journal}"
        if meta.year:
            where += f", {meta.year}"
        if meta.volume:
            where += f", {meta.volume}" + (f"({meta.issue})" if meta.issue else "")
        if meta.pages:
            where += f": {meta.pages}"
        parts.append(where + ".")
    elif kind == "EB/OL":
        published = f"({meta.year})" if meta.year else ""
        seen = f"[{(accessed or date.today()).isoformat()}]"
        parts.append(f". {published}{seen}. {meta.url}.")
    else:
        parts.append(f", {meta.year}." if meta.year else ".")
    if meta.doi:
        parts.append(f" DOI:{meta.doi}.")
    return "".join(parts)


def apa(meta: Metadata, doc_id: str) -> str:
    """``Akhmetzyanova, E., Shulman, I., & Rizvanov, A. (2025). Title. Biologics, 5, 37. https://doi.org/10.3390/x``"""
    title = meta.title or doc_id
    year = f"({meta.year})." if meta.year else "(n.d.)."
    names = [_apa_name(a) for a in meta.authors[:20]]
    if not names:
        head = f"{_sentence(title)} {year}"
        title_part = ""
    else:
        if any(_CJK.search(a) for a in meta.authors):  # Chinese names: listed as written, no "&"
            shown = ", ".join(names)
        else:
            shown = names[0] if len(names) == 1 else ", ".join(names[:-1]) + ", & " + names[-1]
        head = f"{_sentence(shown)} {year}"
        title_part = f" {_sentence(title)}"
    tail = ""
    if meta.journal:
        tail += f" {meta.journal}"
        if meta.volume:
            tail += f", {meta.volume}" + (f"({meta.issue})" if meta.issue else "")
        if meta.pages:
            tail += f", {meta.pages}"
        tail += "."
    if meta.doi:
        tail += f" https://doi.org/{meta.doi}"
    elif meta.url:
        tail += f" {meta.url}"
    return (head + title_part + tail).strip()


def _sentence(text: str) -> str:
    """A title ending in a full stop (unless it ends in its own punctuation)."""
    text = text.strip()
    return text if text[-1:] in ".?!。？！" else text + "."


def _split_name(name: str) -> tuple[str, list[str]]:
    """(surname, given names) of ``"Akhmetzyanova, E."`` or ``"Elvira Akhmetzyanova"``."""
    name = name.strip()
    if "," in name:
        surname, given = name.split(",", 1)
    else:
        *given_parts, surname = name.split()
        given = " ".join(given_parts)
    return surname.strip(), [g for g in re.split(r"[\s.\-]+", given) if g]


def _gbt_name(name: str) -> str:
    """GB/T 7714: a Chinese name as written; a Latin one as ``SURNAME I`` (initials, no full stops)."""
    if _CJK.search(name) or " " not in name.strip() and "," not in name:
        return name.strip().upper() if not _CJK.search(name) else name.strip()
    surname, given = _split_name(name)
    return f"{surname.upper()} {''.join(g[0].upper() for g in given)}".strip()


def _apa_name(name: str) -> str:
    """APA: a Chinese name as written; a Latin one as ``Surname, I. I.``."""
    if _CJK.search(name) or " " not in name.strip() and "," not in name:
        return name.strip()
    surname, given = _split_name(name)
    initials = " ".join(f"{g[0].upper()}." for g in given)
    return f"{surname}, {initials}".strip().rstrip(",")
