"""PDF, Word and web-page documents through the real server and model: uploaded, indexed, cited
exactly with the right page, and bad files refused with the corpus and index left as they were."""

from __future__ import annotations

import httpx
import pytest

from rag.ingest.formats import PAGE_BREAK
from tests import docfiles
from tests.conftest import private_corpus
from tests.servers import ServerThread

pytestmark = pytest.mark.slow

PDF_PAGES = [
    ["渐冻症干细胞试验报告", "一项开放标签研究评估了鞘内注射自体间充质干细胞治疗肌萎缩侧索硬化的安全性，研究者在",
     "六个月内完成了全部受试者的入组。"],
    ["第二部分 结果", "该研究共纳入了十二例肌萎缩侧索硬化患者，随访期间未见严重不良事件。"],
]
EMBEDDED_PAGES = ["帕金森病细胞治疗简报：一项单中心研究向帕金森病患者的纹状体移植了自体间充质干细胞。",
                  "帕金森病研究的结果：移植后第十八个月，患者的运动评分平均改善了百分之二十三。"]
ARTICLE = ["亨廷顿病是一种遗传性神经退行性疾病，目前尚无根治方法。",
           "一项亨廷顿病的I期试验中，八名患者接受了静脉输注的同种异体间充质干细胞，随访十二个月未见安全性问题。"]
ROWS = [["研究", "疾病", "例数"], ["Ortiz 2024", "脑瘫", "二十四例"], ["Silva 2023", "自闭症", "三十例"]]


@pytest.fixture(scope="module")
def server(real_pipeline, tmp_path_factory):
    from api.app import create_app
    from rag.pipeline import Pipeline
    from rag.service import Assistant

    settings, built = private_corpus(real_pipeline, tmp_path_factory.mktemp("formats"))
    assistant = Assistant(Pipeline(settings, built, real_pipeline.embedder, real_pipeline.models))
    with ServerThread(create_app(assistant=assistant)) as s, httpx.Client(base_url=s.base_url, timeout=300) as client:
        yield client, settings, assistant


def upload(client, name: str, data: bytes, content_type: str = "application/octet-stream"):
    return client.post("/documents", files={"file": (name, data, content_type)})


def ensure(client, assistant, name: str, data: bytes, metadata: str | None = None) -> None:
    """Upload ``name`` unless it is already indexed (tests may run alone, or in any order)."""
    if name not in assistant.pipeline.index.documents:
        response = client.post("/documents", files={"file": (name, data)}, data={"metadata": metadata} if metadata else None)
        assert response.status_code == 201, response.text


def page_text(pdf: bytes, page: int) -> str:
    """The text of one page of the original PDF, extracted again, whitespace removed."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        return "".join(document[page - 1].get_textpage().get_text_range().split())
    finally:
        document.close()


@pytest.mark.parametrize("name,build,question,phrase,page", [
    ("als.pdf", lambda: docfiles.pdf_system_font(PDF_PAGES), "肌萎缩侧索硬化的研究纳入了多少例患者？", "十二例", 2),
    ("pd.pdf", lambda: docfiles.pdf_embedded_font(EMBEDDED_PAGES), "帕金森病患者的运动评分改善了多少？", "百分之二十三", 2),
    ("hd.html", lambda: docfiles.html_with_navigation(ARTICLE), "亨廷顿病的I期试验有几名患者？", "八名患者", None),
    ("trials.docx", lambda: docfiles.docx_with_table(["儿童神经发育疾病的细胞治疗试验如下表。"], ROWS, ["表中均为单臂研究。"]),
     "Silva 2023的自闭症研究有多少例？", "三十例", None),
])
def test_documents_are_cited_exactly_and_on_the_right_page(server, name, build, question, phrase, page):
    client, settings, assistant = server
    data = build()
    created = upload(client, name, data)
    assert created.status_code == 201, created.text
    assert (settings.corpus_dir / name).read_bytes() == data  # the original is kept
    answer = client.post("/ask", json={"question": question}).json()
    assert answer["answerable"], answer
    canonical = assistant.pipeline.index.documents[name].text
    cited = [c for c in answer["citations"] if c["doc_id"] == name]
    assert cited and all(canonical[c["start"]:c["end"]] == c["text"] and PAGE_BREAK not in c["text"] for c in cited)
    holder = next(c for c in cited if phrase in c["text"])
    assert holder.get("page") == page
    if page is not None:  # the quote is on that page of the original file
        assert "".join(holder["text"].split()) in page_text(data, page)
        found = client.post("/search", json={"claim": holder["text"][:80]}).json()["passages"]
        top = found[0]
        assert top["doc_id"] == name and top["page"] <= page <= (top.get("page_end") or top["page"])
        assert (f"第{top['page']}–{page}页" if top["page"] < page else f"第{page}页") in top["citation"]


@pytest.mark.parametrize("name,build,status,message", [
    ("locked.pdf", lambda: docfiles.pdf_system_font(PDF_PAGES, encrypt="secret"), 422, "encrypted PDF"),
    ("scan.pdf", docfiles.pdf_without_text, 422, "no text layer"),
    ("broken.pdf", lambda: docfiles.pdf_system_font(PDF_PAGES)[:400], 422, "not a readable PDF"),
    ("bomb.docx", docfiles.docx_bomb, 422, "would unpack to"),
    ("image.pdf", lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415, "content is not a PDF"),
    ("notes.docx", lambda: "纯文本内容。".encode("utf-8"), 415, "content is not a Word"),
    ("sheet.xlsx", lambda: b"PK\x03\x04", 415, "unsupported document type"),
])
def test_bad_files_are_refused_and_change_nothing(server, name, build, status, message):
    client, settings, assistant = server
    before_files = sorted(p.name for p in settings.corpus_dir.iterdir())
    before_index = assistant.pipeline.index
    response = upload(client, name, build(), content_type="application/pdf")
    assert response.status_code == status and message in response.json()["detail"]
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == before_files
    assert assistant.pipeline.index is before_index  # nothing was rebuilt


def test_a_pdf_over_the_page_limit_is_refused(server, monkeypatch):
    from rag.ingest import formats

    client, settings, _ = server
    monkeypatch.setattr(formats, "MAX_PDF_PAGES", 1)
    response = upload(client, "long.pdf", docfiles.pdf_system_font(PDF_PAGES))
    assert response.status_code == 422 and "has 2 pages; the limit is 1" in response.json()["detail"]
    assert not (settings.corpus_dir / "long.pdf").exists()


def test_the_same_text_under_another_name_is_a_409_naming_the_copy(server):
    client, settings, assistant = server
    original = "msc-neuro-review.zh.txt"
    data = (settings.corpus_dir / original).read_bytes()
    before = assistant.pipeline.index
    response = upload(client, "copy-of-review.txt", data, content_type="text/plain")
    assert response.status_code == 409
    assert response.json() == {"detail": f"the same text is already indexed as '{original}'", "existing_id": original}
    assert not (settings.corpus_dir / "copy-of-review.txt").exists() and assistant.pipeline.index is before


def test_answers_scoped_to_documents_never_cite_another(server):
    client, settings, assistant = server
    ensure(client, assistant, "als.pdf", docfiles.pdf_system_font(PDF_PAGES))
    review = "msc-neuro-review.zh.txt"
    others = sorted(set(assistant.pipeline.index.documents) - {review})
    for question, scope in [("为什么Bang和Chung的研究结论不一致？", others), ("肌萎缩侧索硬化的研究纳入了多少例患者？", [review]),
                            ("患者的运动评分改善了多少？", others[:1])]:
        answer = client.post("/ask", json={"question": question, "documents": scope}).json()
        assert all(c["doc_id"] in scope for c in answer["citations"]), (question, scope, answer)
        passages = client.post("/search", json={"claim": question, "documents": scope, "top_k": 10}).json()["passages"]
        assert passages and all(p["doc_id"] in scope for p in passages)
    chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Kim等人纳入了几例患者？"}],
                                                     "documents": others}).json()
    assert all(c["doc_id"] in others for c in chat["citations"])
    # Scoped to the review, the same question is answered from it.
    assert client.post("/ask", json={"question": "Kim等人纳入了几例患者？", "documents": [review]}).json()["answerable"]


def test_a_scope_that_matches_nothing_gets_a_clear_answer(server):
    client, _, _ = server
    answer = client.post("/ask", json={"question": "Kim等人纳入了几例患者？", "documents": ["no-such.pdf"]})
    assert answer.status_code == 200
    assert answer.json()["answerable"] is False and answer.json()["answer"] == "没有符合所选范围的文档，请检查所选的文档。"
    english = client.post("/ask", json={"question": "How many patients did Kim enrol?", "documents": []}).json()
    assert english["answer"] == "No indexed document matches the chosen documents."
    assert client.post("/search", json={"claim": "Kim等人", "documents": ["no-such.pdf"]}).json()["passages"] == []


REVIEW_RECORD = {
    "title": "间充质干细胞及其衍生物:神经系统疾病再生医学中的旧问题与新机遇",
    "authors": ["Akhmetzyanova, E.", "Shulman, I.", "Fakhrutdinova, T.", "Rizvanov, A.", "Mukhamedshina, Y."],
    "year": 2025, "journal": "Biologics", "volume": "5", "issue": "4", "pages": "37",
    "doi": "10.3390/biologics5040037", "tags": ["review"],
}


def test_reference_strings_for_three_documents(server):
    from datetime import date

    client, settings, assistant = server
    ensure(client, assistant, "hd.html", docfiles.html_with_navigation(ARTICLE))
    review = client.patch("/documents/msc-neuro-review.zh.txt", json=REVIEW_RECORD)
    assert review.status_code == 200, review.text
    assert review.json()["references"] == {
        "gbt7714": "AKHMETZYANOVA E, SHULMAN I, FAKHRUTDINOVA T, et al. 间充质干细胞及其衍生物:神经系统疾病再生医学中的"
                   "旧问题与新机遇[J]. Biologics, 2025, 5(4): 37. DOI:10.3390/biologics5040037.",
        "apa": "Akhmetzyanova, E., Shulman, I., Fakhrutdinova, T., Rizvanov, A., & Mukhamedshina, Y. (2025). "
               "间充质干细胞及其衍生物:神经系统疾病再生医学中的旧问题与新机遇. Biologics, 5(4), 37. "
               "https://doi.org/10.3390/biologics5040037",
    }
    # A web page: its title comes from the page; the writer adds authors, year and address.
    page = client.patch("/documents/hd.html", json={"authors": ["张三", "李四"], "year": 2025,
                                                     "url": "https://example.org/news/1.html"}).json()
    assert page["metadata"]["title"] == "外泌体治疗阿尔茨海默病的新进展"  # the article's own heading
    assert page["references"] == {
        "gbt7714": f"张三, 李四. 外泌体治疗阿尔茨海默病的新进展[EB/OL]. (2025)[{date.today().isoformat()}]. https://example.org/news/1.html.",
        "apa": "张三, 李四. (2025). 外泌体治疗阿尔茨海默病的新进展. https://example.org/news/1.html",
    }
    # A PDF with metadata given on upload: title and year from the writer, nothing invented.
    created = client.post("/documents", files={"file": ("report.pdf", docfiles.pdf_system_font(PDF_PAGES[:1]))},
                          data={"metadata": '{"title": "渐冻症干细胞试验报告", "year": 2024, "tags": ["als"]}'})
    assert created.status_code == 201, created.text
    assert created.json()["references"] == {"gbt7714": "渐冻症干细胞试验报告[Z], 2024.", "apa": "渐冻症干细胞试验报告. (2024)."}
    assert created.json()["pages"] == 1
    # Every citation carries its document's reference strings.
    answer = client.post("/ask", json={"question": "Kim等人纳入了几例患者？", "documents": ["msc-neuro-review.zh.txt"]}).json()
    assert answer["citations"][0]["references"] == review.json()["references"]


def test_metadata_filters_scope_answers(server):
    client, _, assistant = server
    ensure(client, assistant, "report.pdf", docfiles.pdf_system_font(PDF_PAGES[:1]),
           '{"title": "渐冻症干细胞试验报告", "year": 2024, "tags": ["als"]}')
    client.patch("/documents/msc-neuro-review.zh.txt", json={"year": 2025})
    by_tag = client.post("/search", json={"claim": "干细胞治疗的安全性", "filters": {"tags": ["als"]}}).json()["passages"]
    assert by_tag and {p["doc_id"] for p in by_tag} == {"report.pdf"}
    by_year = client.post("/search", json={"claim": "干细胞治疗的安全性", "top_k": 20,
                                           "filters": {"year_from": 2025, "year_to": 2025}}).json()["passages"]
    assert by_year and {p["doc_id"] for p in by_year} <= {"msc-neuro-review.zh.txt", "hd.html"}
    none = client.post("/ask", json={"question": "Kim等人纳入了几例患者？", "filters": {"year_from": 1900, "year_to": 1901}})
    assert none.status_code == 200 and none.json()["answerable"] is False


@pytest.mark.parametrize("request_args,status", [
    ({"json": {"year": "last year"}}, 422),
    ({"json": {"colour": "blue"}}, 422),
])
def test_bad_metadata_is_refused(server, request_args, status):
    client, settings, _ = server
    assert client.patch("/documents/msc-neuro-review.zh.txt", **request_args).status_code == status
    assert client.patch("/documents/no-such.txt", json={"year": 2020}).status_code == 404
    bad = client.post("/documents", files={"file": ("x.txt", "新文档的内容。".encode())}, data={"metadata": '{"year": 99}'})
    assert bad.status_code == 422 and "metadata: year" in bad.json()["detail"]
    assert not (settings.corpus_dir / "x.txt").exists()


def test_the_original_file_and_the_canonical_text_are_served(server):
    client, settings, assistant = server
    data = docfiles.pdf_system_font(PDF_PAGES)
    ensure(client, assistant, "als.pdf", data)
    assert client.get("/documents/als.pdf/file").content == (settings.corpus_dir / "als.pdf").read_bytes()
    text = client.get("/documents/als.pdf/text").json()["text"]
    assert text == assistant.pipeline.index.documents["als.pdf"].text and text.count(PAGE_BREAK) == 2
    assert client.get("/documents/nope.pdf/text").status_code == 404
    assert client.get("/documents/nope.pdf/file").status_code == 404


def test_a_null_field_goes_back_to_what_the_file_says(server):
    client, _, assistant = server
    ensure(client, assistant, "hd.html", docfiles.html_with_navigation(ARTICLE))
    assert client.patch("/documents/hd.html", json={"title": "改过的题名"}).json()["metadata"]["title"] == "改过的题名"
    back = client.patch("/documents/hd.html", json={"title": None, "authors": None}).json()["metadata"]
    assert back["title"] == "外泌体治疗阿尔茨海默病的新进展" and back["authors"] == []
