"""Reading the corpus: documents kept byte-exact, their sections, sentences and non-citable tail."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.progress import tracked
from rag.errors import CorpusError
from rag.ingest.formats import CONVERTED_SUFFIXES, TEXT_SUFFIXES, extract_text, is_converted
from rag.ingest.rows import LazyRows
from rag.ingest.splitter import CJK_ENDERS, ASCII_ENDERS, split_spans

SUPPORTED_SUFFIXES = TEXT_SUFFIXES + CONVERTED_SUFFIXES
_LINE = re.compile(r"[^\n]*")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
BODY, REFERENCE = "body", "reference"
# A heading that opens a reference list, and lines that are references or captions wherever they stand.
_REFERENCES_HEADING = re.compile(r"^(参考文献|参考资料|引用文献|文献|references?|bibliography|works cited)\s*[:：]?$", re.I)
_REFERENCE_LINE = re.compile(
    r"doi\.org/|\bdoi\s*[:：]|https?://|^\s*\[\d{1,3}\]\s|^\s*(图|表)\s*\d|^\s*(figure|fig\.|table)\s*\d", re.I
)


@dataclass(frozen=True)
class Sentence:
    """One sentence: ``document.text[start:end]`` is its exact text."""

    doc_id: str
    start: int
    end: int
    section: str
    citable: bool = True
    # "body", or "reference" for reference-list entries, DOI/URL lines, figure and table captions
    # and titles of cited works: indexed (a writer may look for them) but quoted in an answer only
    # when the question asks for a reference.
    role: str = "body"


class SentenceTable(LazyRows):
    """Sentences kept as numpy columns, each ``Sentence`` made when it is read: a list stand-in
    (``t[i]``, ``t[a:b]``, ``len``, iteration, ``==`` with a list) for a server's view of a large
    store, where one Python object per sentence cost about 130 MB per 100k chunks (docs/benchmarks.md).

    ``doc`` and ``section`` are positions in ``doc_ids`` and ``sections``; ``role`` in ``ROLES``.
    """

    ROLES = (BODY, REFERENCE)
    noun = "sentence row"

    def __init__(self, doc_ids: list[str], sections: list[str], doc: np.ndarray, start: np.ndarray, end: np.ndarray,
                 section: np.ndarray, citable: np.ndarray, role: np.ndarray):
        self.doc_ids, self.sections = doc_ids, sections
        self.doc, self.start, self.end, self.section, self.citable, self.role = doc, start, end, section, citable, role

    def __len__(self) -> int:
        return len(self.doc)

    def __getitem__(self, i):
        if isinstance(i, slice):  # a table again: a view's slices must not make every row's object
            return self.take(np.arange(len(self))[i]) if i.step not in (None, 1) else SentenceTable(
                self.doc_ids, self.sections, self.doc[i], self.start[i], self.end[i], self.section[i], self.citable[i],
                self.role[i])
        return super().__getitem__(i)

    def _row(self, i: int) -> Sentence:
        return Sentence(self.doc_ids[self.doc[i]], int(self.start[i]), int(self.end[i]), self.sections[self.section[i]],
                        bool(self.citable[i]), self.ROLES[self.role[i]])

    def __iter__(self):
        doc_ids, sections, roles = self.doc_ids, self.sections, self.ROLES
        for d, a, b, sec, c, r in zip(self.doc.tolist(), self.start.tolist(), self.end.tolist(), self.section.tolist(),
                                      self.citable.tolist(), self.role.tolist()):
            yield Sentence(doc_ids[d], a, b, sections[sec], c, roles[r])

    def __repr__(self) -> str:
        return f"SentenceTable({len(self)} sentences)"

    def take(self, rows: np.ndarray) -> "SentenceTable":
        """The sentences at ``rows``, as a table of their own."""
        return SentenceTable(self.doc_ids, self.sections, self.doc[rows], self.start[rows], self.end[rows],
                             self.section[rows], self.citable[rows], self.role[rows])


@dataclass(frozen=True)
class Document:
    """A source document, its original text untouched, and its sentences in order."""

    doc_id: str
    text: str
    sha256: str
    sentences: tuple[Sentence, ...] = field(default=())

    def quote(self, start: int, end: int) -> str:
        """The exact original text of a span."""
        return self.text[start:end]


@dataclass(frozen=True)
class StructureRules:
    """How lines are classed: headings, captions (titles of cited works) and the non-citable tail."""

    heading_max_chars: int = 40
    caption_pattern: str = ""
    noncitable_pattern: str = ""


def list_corpus_files(corpus_dir: Path) -> list[Path]:
    """The corpus files, sorted; a file of any other type is an error naming it."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    files = []
    for path in sorted(corpus_dir.rglob("*")):
        if path.is_dir() or any(part.startswith(".") for part in path.relative_to(corpus_dir).parts):
            continue  # hidden files (.gitkeep, .DS_Store) are not documents
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise CorpusError(f"unsupported file in corpus (only .txt, .md, .pdf, .docx, .html, .epub): {path}")
        files.append(path)
    if not files:
        raise CorpusError(f"no documents (.txt, .md, .pdf, .docx, .html, .epub) in corpus folder: {corpus_dir}")
    return files


def read_text(path: Path) -> str:
    """A document's canonical text: a .txt/.md file decoded as UTF-8 without newline translation
    (offsets match the file), a PDF, Word or web-page file converted (``rag.ingest.formats``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    if is_converted(path.name):
        try:
            return extract_text(path.name, data)
        except CorpusError as exc:
            raise CorpusError(f"{path}: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path} is not valid UTF-8 (byte {exc.start})") from None


def load_document(doc_id: str, text: str, rules: StructureRules) -> Document:
    """Split a document into sentences, each labelled with its section and citability."""
    sentences = []
    section = ""
    citable = True
    caption = re.compile(rules.caption_pattern) if rules.caption_pattern else None
    tail = re.compile(rules.noncitable_pattern) if rules.noncitable_pattern else None
    for line in _LINE.finditer(text):
        content = line.group().strip().lstrip("\ufeff")
        if not content:
            continue
        if tail and citable and tail.search(line.group()):
            citable = False  # the reposting site's tail: kept, never cited
        is_caption = bool(caption and caption.search(content))
        if _is_heading(content, rules) and not is_caption:
            section = _MD_HEADING.sub("", content)
            continue
        role = line_role(content, section, is_caption)
        for start, end in split_spans(text, line.start(), line.end()):
            sentences.append(Sentence(doc_id, start, end, section, citable, role))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(doc_id, text, digest, tuple(sentences))


# What only a reference list's entries have (not captions or cited works' titles).
_REFERENCE_ENTRY = re.compile(r"doi\.org/|\bdoi\s*[:：]|https?://|^\s*\[\d{1,3}\]\s", re.I)


def is_reference_entry(text: str, section: str) -> bool:
    """Whether a sentence is (part of) an entry of a reference list: under a references heading,
    or numbered "[1] " or carrying a DOI or URL. ``"[1] Akhmetzyanova, E. …"`` -> True; ``"图1:…"`` -> False."""
    return bool(_REFERENCES_HEADING.match(section.strip()) or _REFERENCE_ENTRY.search(text))


def line_role(line: str, section: str, is_caption: bool) -> str:
    """``"reference"`` for a line of a reference list, a DOI or URL line, a figure or table caption, or a
    cited work's title (a caption line with no sentence end); ``"body"`` otherwise.

    ``"[1] Akhmetzyanova, E. … https://doi.org/…"`` -> reference; ``"图1:…示意图。"`` -> reference.
    """
    if _REFERENCES_HEADING.match(section.strip()) or _REFERENCE_LINE.search(line):
        return REFERENCE
    if is_caption and line[-1] not in CJK_ENDERS | ASCII_ENDERS:
        return REFERENCE
    return BODY


def load_corpus(corpus_dir: Path, rules: StructureRules, known: dict[str, Document] | None = None,
                progress: bool = False) -> list[Document]:
    """Every document of the corpus folder, in path order.

    A document in ``known`` whose text is unchanged is taken from there, already split
    (splitting runs jieba over every line: it is most of what reading a corpus costs).
    """
    docs = []
    paths = list_corpus_files(corpus_dir)
    for path in tracked(paths, len(paths), "reading and splitting documents", progress):
        doc_id = path.relative_to(corpus_dir).as_posix()
        text = read_text(path)
        before = (known or {}).get(doc_id)
        if before is not None and before.text == text:
            docs.append(before)
        else:
            docs.append(load_document(doc_id, text, rules))
    return docs


def holds_files(corpus_dir: Path) -> bool:
    """Whether the folder exists and has anything but hidden files in it (a server on a shared store may have none)."""
    return corpus_dir.is_dir() and any(not p.name.startswith(".") for p in corpus_dir.iterdir())


def folder_hashes(corpus_dir: Path) -> dict[str, str]:
    """``corpus_hashes`` of a folder that holds files; none for a missing or empty one (a server on
    a shared store needs no folder: the documents are in the database)."""
    return corpus_hashes(corpus_dir) if holds_files(corpus_dir) else {}


def corpus_hashes(corpus_dir: Path) -> dict[str, str]:
    """SHA-256 of every document's text, by document id, without splitting anything."""
    return {
        path.relative_to(corpus_dir).as_posix(): hashlib.sha256(read_text(path).encode("utf-8")).hexdigest()
        for path in list_corpus_files(corpus_dir)
    }


def _is_heading(line: str, rules: StructureRules) -> bool:
    """A short line that does not end like a sentence, or a Markdown heading.

    ``"间充质干细胞治疗中风的临床案例"`` -> True; ``"结果显示该疗法安全。"`` -> False.
    """
    if _MD_HEADING.match(line):
        return True
    if len(line) > rules.heading_max_chars or line[-1] in CJK_ENDERS | ASCII_ENDERS:
        return False
    # A comma marks a clause: "尽管…局限性,但…新的前景:" leads into a list, it does not title one;
    # a " | " marks a table row ("Kim 2021 | 9例", from Word tables and Markdown), which is data.
    return not any(c in line for c in "，,") and " | " not in line
