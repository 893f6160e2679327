"""What a bibliography needs to know about a document: title, authors, year, journal, DOI, URL, tags.

Taken from the file where it says (a PDF's or Word file's document properties, a web page's
meta tags), and settable by the writer (on upload, or `PATCH /documents/{id}`). What the writer
set is kept beside the corpus in ``.meta/<document>.json`` (a hidden folder, so never read as a
document) and wins over what the file says.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from rag.errors import CorpusError

META_DIR = ".meta"


class Metadata(BaseModel):
    """A document's bibliographic record; every field may be unknown."""

    title: str | None = Field(default=None, max_length=500)
    authors: list[str] = Field(default_factory=list, max_length=100)
    year: int | None = Field(default=None, ge=1000, le=2999)
    journal: str | None = Field(default=None, max_length=300)
    volume: str | None = Field(default=None, max_length=50)
    issue: str | None = Field(default=None, max_length=50)
    pages: str | None = Field(default=None, max_length=50)
    doi: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=50)


def from_file(name: str, data: bytes, text: str) -> Metadata:
    """What the file itself says about its title, authors and year (nothing is guessed)."""
    suffix = name.lower().rsplit(".", 1)[-1]
    found: dict = {}
    try:
        if suffix == "pdf":
            found = _pdf_properties(data)
        elif suffix == "docx":
            found = _docx_properties(data)
        elif suffix in ("html", "htm"):
            found = _html_properties(data)
    except Exception:  # properties are a bonus: a file that gives text but no readable properties is fine
        found = {}
    if not found.get("title"):
        found["title"] = _first_heading(text)
    doi = re.search(r"\b(10\.\d{4,9}/[^\s\"<>，。]+[^\s\"<>，。.,;])", text[:5000])
    if doi and not found.get("doi"):
        found["doi"] = doi.group(1)
    return Metadata(**{k: v for k, v in found.items() if v})


def read(corpus_dir: Path, doc_id: str) -> dict:
    """The fields a writer set for a document (empty when none)."""
    path = _path(corpus_dir, doc_id)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CorpusError(f"metadata of {doc_id!r} is unreadable ({exc}): fix or delete {path}") from None


def check(fields: dict) -> dict:
    """``fields`` if they make a valid record (a null goes back to the file's value), else a CorpusError
    naming the first bad field."""
    try:
        Metadata(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise CorpusError(f"bad metadata: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    return fields


def write(corpus_dir: Path, doc_id: str, fields: dict) -> None:
    """Store the fields a writer set (atomically: a crash leaves the old record or the new one)."""
    check(fields)
    path = _path(corpus_dir, doc_id)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(fields, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def remove(corpus_dir: Path, doc_id: str) -> None:
    """Forget a deleted document's record."""
    _path(corpus_dir, doc_id).unlink(missing_ok=True)


def merged(from_the_file: Metadata, set_by_writer: dict) -> Metadata:
    """The record: what the writer set, over what the file says."""
    return Metadata(**(from_the_file.model_dump() | {k: v for k, v in set_by_writer.items() if v not in (None, [])}))


def _path(corpus_dir: Path, doc_id: str) -> Path:
    return corpus_dir / META_DIR / f"{doc_id}.json"


def _first_heading(text: str) -> str | None:
    """The first line, when it reads as a title (short, not a sentence)."""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 80 and line[-1] not in "。！？.!?；;" else None
    return None


def _year(value: str | None) -> int | None:
    match = re.search(r"(1[5-9]\d\d|2\d\d\d)", value or "")
    return int(match.group(1)) if match else None


# What writing tools put in a file's author field when nobody set it: not a person to cite.
_PLACEHOLDERS = {"anonymous", "unknown", "administrator", "admin", "user", "author", "python-docx",
                 "microsoft office user", "microsoft office 用户", "untitled", "无标题"}


def _authors(value: str | None) -> list[str]:
    names = [a.strip() for a in re.split(r"[;；、]|\band\b|,(?=\s*[A-Z][a-z]+\s*,)", value or "") if a.strip()]
    return [n for n in names if n.lower() not in _PLACEHOLDERS]


def _pdf_properties(data: bytes) -> dict:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        info = pdf.get_metadata_dict(skip_empty=True)
    finally:
        pdf.close()
    title = info.get("Title")
    return {"title": None if (title or "").strip().lower() in _PLACEHOLDERS else title,
            "authors": _authors(info.get("Author")), "year": _year(info.get("CreationDate"))}


def _docx_properties(data: bytes) -> dict:
    import docx

    core = docx.Document(io.BytesIO(data)).core_properties
    return {"title": core.title, "authors": _authors(core.author),
            "year": core.created.year if core.created else None, "tags": _authors(core.keywords)}


def _html_properties(data: bytes) -> dict:
    import trafilatura

    meta = trafilatura.extract_metadata(data)
    if meta is None:
        return {}
    return {"title": meta.title, "authors": _authors(meta.author), "year": _year(meta.date), "url": meta.url,
            "journal": meta.sitename}
