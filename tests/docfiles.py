"""Documents as writers have them, built by libraries inside the tests (no checked-in binaries):
PDFs with a system (non-embedded) CJK font and with an embedded one, a Word file with a table,
a web page with navigation, and the bad inputs an upload must refuse."""

from __future__ import annotations

import io
import zipfile

CHROMIUM = "/usr/bin/chromium"


def pdf_system_font(pages: list[list[str]], encrypt: str | None = None) -> bytes:
    """A PDF whose lines use reportlab's STSong-Light, a CJK font the file names but does not embed."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    out = io.BytesIO()
    pdf = canvas.Canvas(out, encrypt=encrypt)
    for lines in pages:
        pdf.setFont("STSong-Light", 12)
        for i, line in enumerate(lines):
            pdf.drawString(72, 760 - 16 * i, line)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def pdf_embedded_font(pages: list[str]) -> bytes:
    """A PDF printed by Chromium from HTML: its CJK font (Noto Sans CJK) is embedded as a subset."""
    from playwright.sync_api import sync_playwright

    body = "".join(f'<div style="page-break-after: always">{text}</div>' for text in pages)
    html = ('<html lang="zh-CN"><head><meta charset="utf-8"><style>body{font:16px "Noto Sans CJK SC",sans-serif;'
            'width:30em}</style></head><body>' + body + "</body></html>")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.set_content(html)
            return page.pdf(format="A5")
        finally:
            browser.close()


def pdf_without_text() -> bytes:
    """A 'scanned' PDF: drawn shapes only, no text layer."""
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    pdf.rect(72, 600, 300, 150, fill=1)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def docx_with_table(paragraphs: list[str], rows: list[list[str]], after: list[str]) -> bytes:
    """A Word file: a heading, paragraphs, a table, then more paragraphs."""
    import docx

    document = docx.Document()
    document.add_heading("间充质干细胞试验汇总", level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    for text in after:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def docx_bomb() -> bytes:
    """A zip named .docx whose document inflates about a thousand times its size."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document>" + " " * 30_000_000 + "</w:document>")
    return out.getvalue()


def html_with_navigation(article: list[str]) -> bytes:
    """A saved web page: navigation, the article's paragraphs, a footer and a comment box."""
    paragraphs = "".join(f"<p>{text}</p>" for text in article)
    return ("<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>外泌体治疗阿尔茨海默病</title></head>"
            "<body><nav><a href='/'>首页</a> | <a href='/news'>新闻中心</a> | <a href='/about'>关于我们</a></nav>"
            f"<main><article><h1>外泌体治疗阿尔茨海默病的新进展</h1>{paragraphs}</article></main>"
            "<footer>版权所有 © 2025 某某医学网 京ICP备12345678号</footer>"
            "<div class='comments'>发表评论：写得真好！</div></body></html>").encode("utf-8")


def epub(chapters: list[tuple[str, list[str]]]) -> bytes:
    """An e-book: a container, a package file with a spine, and one XHTML file per chapter."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml",
                         '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                         '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
                         "</rootfiles></container>")
        items = "".join(f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(len(chapters)))
        # The spine lists the chapters in reverse of their file names: reading order is the spine's.
        spine = "".join(f'<itemref idref="c{i}"/>' for i in reversed(range(len(chapters))))
        archive.writestr("OEBPS/content.opf", '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
                         f"<metadata/><manifest>{items}</manifest><spine>{spine}</spine></package>")
        for i, (title, paragraphs) in enumerate(chapters):
            body = f"<h1>{title}</h1>" + "".join(f"<p>{p}</p>" for p in paragraphs)
            archive.writestr(f"OEBPS/c{i}.xhtml", '<?xml version="1.0" encoding="utf-8"?>'
                             f'<html xmlns="http://www.w3.org/1999/xhtml"><body>{body}</body></html>')
    return out.getvalue()
