"""Evidence tables of study records: JSON, CSV and Markdown, every cell with its citation.

A cell is the quoted text followed by where it stands, ``[doc_id#start-end]`` (the same id a
citation carries); a field the document does not give is empty in CSV and "—" in Markdown.
"""

from __future__ import annotations

import csv
import io

from rag.studies.records import FIELDS, Arm, Quote, Study

NOT_GIVEN_MD = "—"


def cite(doc_id: str, start: int, end: int) -> str:
    """A span's citation id. ``("a.txt", 3, 9)`` -> ``"a.txt#3-9"``."""
    return f"{doc_id}#{start}-{end}"


def cell(study: Study, name: str) -> str:
    """One field as a cited cell ("" when the document does not give it).

    ``"1×10⁸个细胞"`` at 1003 -> ``"1×10⁸个细胞 [msc.txt#1003-1011]"``.
    """
    value = study.field(name)
    if not value:
        return ""
    if isinstance(value, Quote):
        return f"{value.text} [{cite(study.doc_id, value.start, value.end)}]"
    return "; ".join(arm_cell(study.doc_id, arm) for arm in value)


def arm_cell(doc_id: str, arm: Arm) -> str:
    """An arm's name and count, each cited."""
    return f"{arm.name.text} [{cite(doc_id, arm.name.start, arm.name.end)}] {arm.n.text} [{cite(doc_id, arm.n.start, arm.n.end)}]"


def to_json(studies: list[Study]) -> list[dict]:
    """The records as JSON objects; every field carries its text, offsets and citation id."""
    return [s.model_dump() for s in studies]


def to_csv(studies: list[Study], lang: str = "zh") -> str:
    """The records as CSV: an id and year column, then one column per field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "year"] + [_heading(n, lang) for n in FIELDS])
    for s in studies:
        writer.writerow([s.id, s.year or ""] + [cell(s, n) for n in FIELDS])
    return out.getvalue()


def to_markdown(studies: list[Study], lang: str = "zh") -> str:
    """The records as a Markdown table (a "—" where the document does not give a field)."""
    heads = ["id", "year"] + [_heading(n, lang) for n in FIELDS]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for s in studies:
        cells = [s.id, str(s.year or "")] + [cell(s, n) or NOT_GIVEN_MD for n in FIELDS]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _heading(name: str, lang: str) -> str:
    """A column's heading in the chosen language."""
    return FIELDS[name][0 if lang == "zh" else 1]
