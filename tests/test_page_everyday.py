"""The chat page in everyday use, in real headless Chromium against the real app and model:
long conversations, failures and retries, offline API docs, citations in context, copy,
conversations kept across reloads, documents managed from the page, feedback, accessibility
(axe-core from npm) and screenshots at desktop and phone sizes for a person to look at."""

from __future__ import annotations

import re

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, private_corpus
from tests.test_page_browser import BANG_CHUNG, DOSE, LEVY, REVIEW_TEXT, Chat, serve

pytestmark = pytest.mark.slow

AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "tests" / "screenshots"
KIM = "Kim等人的试验纳入了几例患者？"
NEW_DOC = ("渐冻症的临床案例\n"
           "一项纳入12例肌萎缩侧索硬化患者的开放标签试验中，鞘内注射自体MSCs后随访6个月，未见严重不良事件。\n")

# Imported fixtures are used by name below.
from tests.test_page_browser import base_url, browser, open_page  # noqa: E402,F401


@pytest.fixture(scope="module")
def writable(real_pipeline, tmp_path_factory):
    """A server over a private copy of the corpus (documents can be added and deleted) and its feedback file."""
    from rag.pipeline import Pipeline
    from rag.service import Assistant

    root = tmp_path_factory.mktemp("everyday")
    settings, built = private_corpus(real_pipeline, root, feedback_file=root / "feedback.jsonl")
    with serve(Assistant(Pipeline(settings, built, real_pipeline.embedder, real_pipeline.models))) as url:
        yield url, settings


def test_the_26th_exchange_is_answered_and_history_stays_bounded(base_url, open_page):
    chat = open_page(base_url)
    questions = [LEVY, DOSE, KIM, "随访了多久？", BANG_CHUNG]
    for i in range(26):
        chat.ask(questions[i % len(questions)])
    assert chat.answers().count() == 26 and chat.page.locator("#conversation .msg.error").count() == 0
    assert max(len(body["history"]) for body in chat.asked) <= 20  # the last ten exchanges
    assert chat.asked[-1]["history"][-2]["content"] == questions[24 % len(questions)]
    assert chat.errors == []


def test_a_failed_question_stays_in_the_box_and_retry_answers_it(base_url, open_page):
    chat = open_page(base_url)
    page = chat.page
    # The server cannot be reached: a readable error, the question back in the box, a retry button.
    page.route("**/ask/stream", lambda route: route.abort("connectionrefused"))
    error = chat.ask(LEVY, expect="error")
    assert "Cannot reach the server" in error.inner_text() and "Failed to fetch" not in error.inner_text()
    assert page.input_value("#question") == LEVY
    # A server error reads as one too, not "HTTP 500 (HTTP 500)".
    page.unroute("**/ask/stream")
    page.route("**/ask/stream", lambda route: route.fulfill(status=500, body="Internal Server Error"))
    page.fill("#question", "")
    error = chat.ask(LEVY, expect="error")
    assert "The server failed; please try again. (HTTP 500)" in error.inner_text()
    page.unroute("**/ask/stream")
    error.locator(".retry").click()
    page.locator("#conversation .msg.assistant[data-state=done]").first.wait_for()
    assert "36例" in page.locator("#conversation .msg.assistant .answer").first.inner_text()
    assert page.locator("#conversation .msg.user").count() == 2  # the first failure's bubble stays, the retried one went
    assert all("Failed to fetch" in e or "500" in e or "ERR_CONNECTION_REFUSED" in e for e in chat.errors)


def test_api_docs_render_with_no_internet(base_url, browser):
    context = browser.new_context()
    outside: list[str] = []

    def only_loopback(route):
        if route.request.url.startswith(base_url):
            return route.continue_()
        outside.append((route.request.resource_type, route.request.url))
        return route.abort()

    context.route("**/*", only_loopback)
    try:
        page = context.new_page()
        page.goto(base_url + "/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert page.locator(".swagger-ui .opblock").count() >= 8
        assert "/ask" in page.locator(".swagger-ui").inner_text()
        page.goto(base_url + "/redoc")
        page.wait_for_function("() => document.body.innerText.includes('/v1/chat/completions')", timeout=30_000)
        # Nothing they run or lay out with comes from outside (ReDoc's decorative "powered by" logo may ask).
        assert [url for kind, url in outside if kind != "image"] == []
    finally:
        context.close()


def test_citation_panel_shows_the_quote_in_its_paragraph_and_is_in_view(base_url, open_page):
    chat = open_page(base_url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = chat.page
    answer = chat.ask(KIM)
    marker = answer.locator(".answer .cite").first
    assert marker.get_attribute("aria-label") == "引用 1 / citation 1"
    box = marker.bounding_box()
    assert box["width"] >= 24 and box["height"] >= 24  # target size
    marker.click()
    panel = answer.locator(".citation-detail")
    panel.wait_for(state="visible")
    page.wait_for_selector(".citation-detail .context")
    quote = panel.locator(".quote").inner_text()
    shown = panel.locator("blockquote").inner_text()
    assert quote in REVIEW_TEXT and len(shown) > len(quote) and quote in shown and shown in REVIEW_TEXT
    # Not hidden behind the question box: the panel's top is inside the scrolled area.
    top = panel.bounding_box()["y"]
    composer = page.locator(".composer").bounding_box()["y"]
    assert 0 <= top < composer
    page.keyboard.press("Escape")
    assert panel.is_hidden() and marker.get_attribute("aria-expanded") == "false"
    assert chat.errors == []


def test_copy_gives_the_answer_with_its_sources(base_url, open_page):
    chat = open_page(base_url, permissions=["clipboard-read", "clipboard-write"])
    answer = chat.ask(KIM)
    answer.locator(".actions .copy").click()
    answer.locator(".actions .done", has_text="Copied").wait_for()
    copied = chat.page.evaluate("navigator.clipboard.readText()")
    first = json.loads(chat.page.evaluate("localStorage.getItem('rag.conversations.v1')"))["list"][0]["turns"][0]["result"]
    assert copied.startswith(first["answer"])
    assert "来源 / Sources:" in copied and first["citations"][0]["text"] in copied
    assert f"第{first['citations'][0]['start']}–{first['citations'][0]['end']}字符" in copied
    assert "助手 / Assistant" not in copied and " ms" not in copied


def test_conversations_survive_a_reload_and_can_be_reopened(base_url, open_page):
    chat = open_page(base_url)
    page = chat.page
    chat.ask(LEVY)
    chat.ask(DOSE)
    page.reload()
    page.wait_for_selector("#conversation .msg.assistant[data-state=done]")
    assert page.locator("#conversation .msg.user").count() == 2
    assert "150万个细胞/公斤体重" in page.locator("#conversation .msg.assistant").nth(1).inner_text()
    # A follow-up after the reload still has its history.
    chat.ask("随访了多久？")
    assert [m["content"] for m in chat.asked[-1]["history"] if m["role"] == "user"] == [LEVY, DOSE]
    # A new chat, then the first one again from the list.
    page.click("#reset")
    chat.ask(KIM)
    page.click("#chats-toggle")
    items = page.locator("#chat-list li")
    assert items.count() == 2
    page.locator("#chat-list .chat-title", has_text=LEVY[:20]).click()
    assert page.locator("#conversation .msg.user").count() == 3
    assert chat.errors == []


def test_documents_are_added_and_deleted_from_the_page(writable, open_page, tmp_path):
    url, settings = writable
    chat = open_page(url)
    page = chat.page
    page.wait_for_function("() => document.getElementById('footer').textContent.includes('1 篇文档')")
    page.click("#docs-toggle")
    page.wait_for_selector("#doc-list li[data-doc='msc-neuro-review.zh.txt']")
    upload = tmp_path / "als-trial.txt"
    upload.write_text(NEW_DOC, encoding="utf-8")
    page.set_input_files("#upload-file", str(upload))
    page.click("#upload")
    page.wait_for_selector("#doc-list li[data-doc='als-trial.txt']", timeout=120_000)
    page.wait_for_function("() => document.getElementById('footer').textContent.includes('2 篇文档')")
    assert (settings.corpus_dir / "als-trial.txt").read_text(encoding="utf-8") == NEW_DOC
    answer = chat.ask("肌萎缩侧索硬化的试验纳入了多少例患者？")
    assert any(c["doc_id"] == "als-trial.txt" for c in chat_result(page)["citations"]), answer.inner_text()

    delete = page.locator("#doc-list li[data-doc='als-trial.txt'] button")
    delete.click()
    assert delete.inner_text() == "确认删除 / Confirm" and (settings.corpus_dir / "als-trial.txt").exists()
    delete.click()
    page.wait_for_selector("#doc-list li[data-doc='als-trial.txt']", state="detached", timeout=120_000)
    page.wait_for_function("() => document.getElementById('footer').textContent.includes('1 篇文档')")
    assert not (settings.corpus_dir / "als-trial.txt").exists()
    assert chat.errors == []


def chat_result(page) -> dict:
    """The stored result of the last exchange of the current conversation."""
    chats = json.loads(page.evaluate("localStorage.getItem('rag.conversations.v1')"))
    current = next(c for c in chats["list"] if c["id"] == chats["current"])
    return current["turns"][-1]["result"]


def test_feedback_reaches_the_server(writable, open_page):
    url, settings = writable
    chat = open_page(url)
    answer = chat.ask(KIM)
    answer.locator(".actions .thumb").nth(1).click()
    answer.locator(".feedback-form input").fill("第一句没有回答人数")
    answer.locator(".feedback-form button").click()
    answer.locator(".actions .done", has_text="Thanks").wait_for()
    stored = [json.loads(line) for line in settings.feedback_file.read_text(encoding="utf-8").splitlines()]
    assert stored[-1]["rating"] == "down" and stored[-1]["comment"] == "第一句没有回答人数"
    assert stored[-1]["question"] == KIM and stored[-1]["citations"]
    assert chat.errors == []


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_no_serious_accessibility_violations_and_screenshots(base_url, open_page, size):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tests/browser` (.ci/run does)")
    width, height = size
    phone = width < 600
    chat = open_page(base_url, viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone)
    page = chat.page
    answer = chat.ask(KIM)
    answer.locator(".answer .cite").first.click()
    page.wait_for_selector(".citation-detail .context")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == []
    assert page.locator("label[for=question]").count() == 1
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / f"chat-{width}x{height}.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    # The CJK text is drawn with a CJK font, not tofu boxes: the page's font resolves to one installed here.
    assert page.evaluate("document.fonts.check('15px \"Noto Sans CJK SC\"', '文献问答')")


def test_a_citation_opens_the_whole_document_at_the_quote(base_url, open_page):
    chat = open_page(base_url, viewport={"width": 1000, "height": 700})
    page = chat.page
    answer = chat.ask(KIM)
    answer.locator(".answer .cite").first.click()
    panel = answer.locator(".citation-detail")
    quote = panel.locator(".quote").inner_text()
    href = panel.locator("a.open-doc").get_attribute("href")
    start, end = (re.search(rf"[?&]{key}=(\d+)", href).group(1) for key in ("start", "end"))
    with page.context.expect_page() as opened:
        panel.locator("a.open-doc").click()
    view = opened.value
    view.wait_for_selector("mark#cited")
    assert view.locator("mark#cited").inner_text() == quote
    assert REVIEW_TEXT.startswith(view.locator("#text").inner_text()[:50])  # the whole document, from its start
    box = view.locator("mark#cited").bounding_box()
    assert 0 <= box["y"] < 700  # scrolled to the quote
    assert f"第 {start}–{end} 字符" in view.locator("#where").inner_text()
    assert REVIEW_TEXT[int(start):int(end)] == quote
