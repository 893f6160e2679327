"""PDF, Word and web-page files to canonical text (rag.ingest.formats), and the bad files an upload
must refuse with one clear line. Files are built by libraries here; no model is loaded."""

from __future__ import annotations

import pytest

from rag.errors import UnreadableDocument, UnsupportedType
from rag.ingest import formats
from rag.ingest.formats import PAGE_BREAK, extract_text, page_of
from tests import docfiles

WRAPPED = ["第一页的标题", "这是一段很长的中文句子，它在这一行没有结束，而是一直", "延续到下一行才结束。第二句话在这里。"]


def test_pdf_pages_are_kept_and_wrapped_chinese_lines_joined_without_a_space():
    text = extract_text("paper.pdf", docfiles.pdf_system_font([WRAPPED, ["第二页：Levy等人纳入了36例患者。"]]))
    assert text == (PAGE_BREAK + "第一页的标题\n这是一段很长的中文句子，它在这一行没有结束，而是一直延续到下一行才结束。第二句话在这里。"
                    "\n" + PAGE_BREAK + "第二页：Levy等人纳入了36例患者。")
    assert page_of(text, text.index("第二句话")) == 1 and page_of(text, text.index("Levy")) == 2
    assert page_of("没有分页的文本。", 3) is None
    single = extract_text("one.pdf", docfiles.pdf_system_font([WRAPPED]))
    assert page_of(single, single.index("第二句话")) == 1  # one page is still a page


def test_docx_paragraphs_and_table_rows_in_document_order():
    data = docfiles.docx_with_table(["Kim等人的试验纳入9例患者。"], [["研究", "例数"], ["Kim 2021", "9例"], ["Xie 2023", "9名"]],
                                    ["表后的说明文字。"])
    assert extract_text("trials.docx", data).split("\n") == [
        "间充质干细胞试验汇总", "Kim等人的试验纳入9例患者。", "研究 | 例数", "Kim 2021 | 9例", "Xie 2023 | 9名", "表后的说明文字。"]


def test_html_keeps_the_article_and_drops_navigation_footer_and_comments():
    article = ["Xie等人(2023年)开展了一项开放标签I/II期试验，鼻内给予外泌体治疗阿尔茨海默病。",
               "9名受试者在12周内每周接受两次治疗，并随访至第48周，所有剂量组均安全且耐受性良好。"]
    text = extract_text("news.html", docfiles.html_with_navigation(article))
    assert all(p in text for p in article)
    assert not any(junk in text for junk in ("新闻中心", "京ICP备", "写得真好"))


@pytest.mark.parametrize("name,build,error,message", [
    ("locked.pdf", lambda: docfiles.pdf_system_font([WRAPPED], encrypt="secret"), UnreadableDocument,
     "is an encrypted PDF: remove its password"),
    ("scan.pdf", docfiles.pdf_without_text, UnreadableDocument, "has no text layer (a scanned PDF?); text recognition (OCR)"),
    ("broken.pdf", lambda: docfiles.pdf_system_font([WRAPPED])[:400], UnreadableDocument, "is not a readable PDF"),
    ("bomb.docx", docfiles.docx_bomb, UnreadableDocument, "would unpack to 30,000,033 bytes"),
    ("broken.docx", lambda: b"PK\x03\x04" + b"\x00" * 100, UnreadableDocument, "damaged zip"),
    ("image.pdf", lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, UnsupportedType, "is named .pdf but its content is not a PDF"),
    ("paper.docx", lambda: docfiles.pdf_without_text(), UnsupportedType, "is named .docx but its content is not a Word"),
    ("app.html", lambda: b"<html><body><script>var state = {};</script></body></html>", UnreadableDocument,
     "has no article text"),
])
def test_bad_files_are_refused_with_one_clear_line(name, build, error, message):
    with pytest.raises(error, match=None) as caught:
        extract_text(name, build())
    assert message in str(caught.value) and name in str(caught.value) and "\n" not in str(caught.value)


def test_a_pdf_over_the_page_limit_is_refused(monkeypatch):
    monkeypatch.setattr(formats, "MAX_PDF_PAGES", 2)
    with pytest.raises(UnreadableDocument, match="has 3 pages; the limit is 2"):
        extract_text("long.pdf", docfiles.pdf_system_font([WRAPPED] * 3))


def test_epub_chapters_in_spine_order():
    data = docfiles.epub([("第二章 结果", ["十二例患者均完成随访。"]), ("第一章 方法", ["鞘内注射自体间充质干细胞。"])])
    assert extract_text("book.epub", data).split("\n") == ["第一章 方法", "鞘内注射自体间充质干细胞。", "第二章 结果", "十二例患者均完成随访。"]
    with pytest.raises(UnsupportedType, match="is a zip file but not an EPUB document"):
        extract_text("book.epub", docfiles.docx_with_table(["x。"], [["a", "b"]], []))
