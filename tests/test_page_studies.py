"""Study views of the chat page in real headless Chromium against the real app and model: the
Bang/Chung contrast rendered as a table whose cells open their sentences, the studies drawer whose
cells open their quotes in the document, and an axe accessibility check of both."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.test_page_browser import BANG_CHUNG, REVIEW_TEXT
from tests.test_page_everyday import AXE

pytestmark = pytest.mark.slow

# Imported fixtures are used by name below.
from tests.test_page_browser import base_url, browser, open_page  # noqa: E402,F401


def serious_violations(page) -> list:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def test_contrast_answer_is_a_table_whose_cells_open_their_source(base_url, open_page):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tests/browser` (.ci/run does)")
    chat = open_page(base_url, viewport={"width": 1100, "height": 900})
    page = chat.page
    answer = chat.ask(BANG_CHUNG)
    lead = answer.locator(".answer").inner_text()
    assert lead.startswith("文档给出的原因：这些结果的差异可能源于患者病程") and "- 病程" not in lead  # rows are in the table
    table = answer.locator("table.answer-table")
    assert [h.strip() for h in table.locator("thead th").all_inner_texts()] == ["项目 / Field", "Bang等人于2005年", "Chung等人于2021年"]
    stage = table.locator("tbody tr", has=page.locator("th", has_text="病程/分期"))
    assert "急性" in stage.locator("td").nth(0).inner_text() and "慢性" in stage.locator("td").nth(1).inner_text()
    randomised = table.locator("tbody tr", has=page.locator("th", has_text="随机"))
    assert "文档未给出" in randomised.locator("td").nth(0).inner_text()
    patients = table.locator("tbody tr", has=page.locator("th", has_text="患者人数")).locator("td")
    assert "30例" in patients.nth(0).inner_text() and "对照组(15例患者)" in patients.nth(1).inner_text()
    # A cell's button opens the sentence the value stands in, in the answer's citation panel.
    patients.nth(1).locator(".cite").click()
    panel = answer.locator(".citation-detail")
    panel.wait_for(state="visible")
    quote = panel.locator(".quote").inner_text()
    assert "对照组(15例患者)" in quote and quote in REVIEW_TEXT
    assert serious_violations(page) == []
    assert chat.errors == []


def test_studies_drawer_lists_every_study_and_opens_a_cell_in_the_document(base_url, open_page):
    chat = open_page(base_url, viewport={"width": 1280, "height": 900})
    page = chat.page
    page.click("#studies-toggle")
    rows = page.locator("#study-table tbody tr")
    rows.first.wait_for()
    assert rows.count() == 9
    assert page.locator("#study-table tbody tr[data-study=macedo-2024]").inner_text().count("6例") == 1
    cell = page.locator("#study-table tbody tr[data-study=chung-2021] a", has_text="对照组(15例患者)").first
    with page.context.expect_page() as opened:
        cell.click()
    view = opened.value
    view.wait_for_selector("mark#cited")
    assert view.locator("mark#cited").inner_text() == "对照组(15例患者)"
    start = int(cell.get_attribute("href").split("start=")[1].split("&")[0])
    assert REVIEW_TEXT[start:start + len("对照组(15例患者)")] == "对照组(15例患者)"
    # The evidence table downloads as the same CSV and Markdown the API exports.
    for button, expected in (("#studies-csv", "studies-review.csv"), ("#studies-md", "studies-review.md")):
        with page.expect_download() as download:
            page.click(button)
        saved = download.value.path().read_text(encoding="utf-8")
        assert saved == (ROOT / "tests" / "data" / expected).read_text(encoding="utf-8")
    assert serious_violations(page) == []
    page.keyboard.press("Escape")
    assert page.locator("#studies").is_hidden()
    assert chat.errors == []
