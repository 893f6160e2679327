"""Documents as writers have them: the canonical text of a PDF, Word or web-page file.

Every citation indexes into the text these functions return, so they are deterministic: the
same bytes always give the same text. A PDF's pages are kept in it as a form feed (``\\f``) at
the start of every page, so a span's page is the number of form feeds up to it (``page_of``);
``\\f`` is whitespace, so no sentence or quote contains it.

- PDF (pypdfium2: the text layer, both with embedded and with system CJK fonts): lines wrapped
  inside a sentence are joined, without a space between Chinese characters.
- DOCX (python-docx): paragraphs and tables in document order, a table row per line.
- HTML (trafilatura): the article's main text, without navigation, footer or comments.
- EPUB (its own zip and XML, read with lxml): the chapters in reading order, a block per line.

Anything that cannot give text is refused with one line saying why (``UnreadableDocument``),
before anything is stored.
"""

from __future__ import annotations

import io
import re
import statistics
import zipfile

from rag.errors import UnreadableDocument, UnsupportedType

PAGE_BREAK = "\f"
TEXT_SUFFIXES = (".txt", ".md")
CONVERTED_SUFFIXES = (".pdf", ".docx", ".html", ".htm", ".epub")
# Past these a file is refused rather than read: a book-length PDF or a zip that inflates to
# gigabytes would hold the server for minutes or exhaust its memory.
MAX_PDF_PAGES = 2_000
MAX_DOCX_UNZIPPED_BYTES = 100_000_000  # Word and EPUB files alike
MAX_DOCX_RATIO = 200  # uncompressed / compressed size of one entry

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
_SENTENCE_END = re.compile(r"[。！？!?；;：:]$|[.]$")
# A wrapped line fills the text width; one much shorter than its page's typical line ends a paragraph.
_FULL_LINE_SHARE = 0.8


def is_converted(name: str) -> bool:
    """Whether a file of this name is converted to text (PDF, DOCX, HTML) rather than read as it is."""
    return name.lower().endswith(CONVERTED_SUFFIXES)


def extract_text(name: str, data: bytes) -> str:
    """The canonical text of a PDF, DOCX or HTML file; refused with a one-line reason if it has none."""
    suffix = "." + name.lower().rsplit(".", 1)[-1]
    if suffix == ".pdf":
        if not data.startswith(b"%PDF-"):
            raise UnsupportedType(f"{name!r} is named .pdf but its content is not a PDF")
        return pdf_text(name, data)
    if suffix == ".docx":
        if not data.startswith(b"PK\x03\x04"):
            raise UnsupportedType(f"{name!r} is named .docx but its content is not a Word (.docx) file")
        return docx_text(name, data)
    if suffix in (".html", ".htm"):
        return html_text(name, data)
    if suffix == ".epub":
        if not data.startswith(b"PK\x03\x04"):
            raise UnsupportedType(f"{name!r} is named .epub but its content is not an e-book")
        return epub_text(name, data)
    raise UnsupportedType(f"unsupported document type: {name!r}")


def page_of(text: str, offset: int) -> int | None:
    """The page (from 1) that ``offset`` of a converted PDF's text lies on; None for unpaged text."""
    if not text.startswith(PAGE_BREAK):
        return None
    return max(1, text.count(PAGE_BREAK, 0, offset + 1))


# ---------------------------------------------------------------- PDF


def pdf_text(name: str, data: bytes) -> str:
    """The text layer of every page, lines joined into paragraphs, pages separated by ``PAGE_BREAK``."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        reason = str(exc).lower()
        if "password" in reason:
            raise UnreadableDocument(f"{name!r} is an encrypted PDF: remove its password, then upload it again") from None
        raise UnreadableDocument(f"{name!r} is not a readable PDF ({exc})") from None
    try:
        if len(pdf) > MAX_PDF_PAGES:
            raise UnreadableDocument(f"{name!r} has {len(pdf)} pages; the limit is {MAX_PDF_PAGES}")
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            try:
                pages.append(_paragraphs(textpage.get_text_range()))
            finally:
                textpage.close()
                page.close()
    finally:
        pdf.close()
    if not any(p.strip() for p in pages):
        raise UnreadableDocument(f"{name!r} has no text layer (a scanned PDF?); text recognition (OCR) is not done here")
    return PAGE_BREAK + ("\n" + PAGE_BREAK).join(pages)


def _paragraphs(page_text: str) -> str:
    """A page's lines with wrapped ones joined: a full-width line not ending a sentence continues
    on the next (without a space between CJK characters, with one between words)."""
    lines = [line.strip() for line in page_text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    full = _FULL_LINE_SHARE * statistics.median(len(line) for line in lines)
    out = [lines[0]]
    for previous, line in zip(lines, lines[1:]):
        wrapped = len(previous) >= full and not _SENTENCE_END.search(previous)
        if not wrapped:
            out.append(line)
        elif _CJK.match(line[0]) or _CJK.match(previous[-1]):
            out[-1] += line
        else:
            out[-1] += " " + line
    return "\n".join(out)


# ---------------------------------------------------------------- DOCX


def docx_text(name: str, data: bytes) -> str:
    """Paragraphs and table rows of a Word file in document order, one per line."""
    _check_zip(name, data)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several types for a damaged package
        raise UnreadableDocument(f"{name!r} is not a readable Word (.docx) file ({type(exc).__name__})") from None
    lines = []
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(block, document).text.strip())
        elif tag == "tbl":
            for row in Table(block, document).rows:
                cells = list(dict.fromkeys(cell.text.strip() for cell in row.cells))  # merged cells repeat
                lines.append(" | ".join(c for c in cells if c))
    text = "\n".join(line for line in lines if line)
    if not text.strip():
        raise UnreadableDocument(f"{name!r} has no text")
    return text


def _a(kind: str) -> str:
    """The article before a kind of file: "an EPUB", "a Word (.docx)"."""
    return "an" if kind[:1] in "AEIOU" else "a"


def _check_zip(name: str, data: bytes, kind: str = "Word (.docx)", required: str = "word/document.xml") -> None:
    """Refuse a zip that is damaged, that would inflate far beyond its size (a zip bomb), or that
    lacks the part its kind of file must have."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        raise UnreadableDocument(f"{name!r} is not a readable {kind} file (damaged zip)") from None
    total = sum(e.file_size for e in entries)
    ratio = max((e.file_size / max(e.compress_size, 1) for e in entries), default=0)
    if total > MAX_DOCX_UNZIPPED_BYTES or ratio > MAX_DOCX_RATIO:
        raise UnreadableDocument(f"{name!r} would unpack to {total:,} bytes (compression ratio {ratio:.0f}): refused")
    if required not in {e.filename for e in entries}:
        raise UnsupportedType(f"{name!r} is a zip file but not {_a(kind)} {kind} document")


# ---------------------------------------------------------------- HTML


def html_text(name: str, data: bytes) -> str:
    """The main text of a web page (navigation, footers and comments dropped), a paragraph per line."""
    import trafilatura

    if b"\x00" in data[:4096]:
        raise UnsupportedType(f"{name!r} is named as a web page but its content is binary")
    text = trafilatura.extract(data, include_comments=False, include_tables=True, favor_precision=True,
                               deduplicate=False, output_format="txt")
    if not text or not text.strip():
        raise UnreadableDocument(f"{name!r} has no article text (only navigation or scripts?)")
    return text.strip()


# ---------------------------------------------------------------- EPUB

_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "th", "dt", "dd", "figcaption"}


def epub_text(name: str, data: bytes) -> str:
    """The chapters of an e-book in reading order (its spine), one text block per line."""
    from lxml import etree

    _check_zip(name, data, kind="EPUB", required="META-INF/container.xml")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            container = etree.fromstring(archive.read("META-INF/container.xml"))
            opf_path = container.find(".//{*}rootfile").get("full-path")
            opf = etree.fromstring(archive.read(opf_path))
            base = opf_path.rsplit("/", 1)[0] + "/" if "/" in opf_path else ""
            hrefs = {item.get("id"): item.get("href") for item in opf.iterfind(".//{*}manifest/{*}item")}
            lines = []
            for ref in opf.iterfind(".//{*}spine/{*}itemref"):
                chapter = etree.fromstring(archive.read(base + hrefs[ref.get("idref")]), etree.XMLParser(recover=True))
                for element in chapter.iter():
                    if isinstance(element.tag, str) and etree.QName(element).localname in _BLOCKS:
                        text = " ".join("".join(element.itertext()).split())
                        if text:
                            lines.append(text)
    except (KeyError, AttributeError, etree.XMLSyntaxError, zipfile.BadZipFile) as exc:
        raise UnreadableDocument(f"{name!r} is not a readable e-book ({type(exc).__name__})") from None
    if not lines:
        raise UnreadableDocument(f"{name!r} has no text")
    return "\n".join(lines)
