"""The chat page end to end: real headless Chromium against the real app served on loopback.

The server is the real FastAPI app (real model, real index) run by uvicorn in a thread on
127.0.0.1; the browser is Debian's chromium driven by Playwright's sync API. Nothing leaves
the machine.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
REVIEW_TEXT = (ROOT / "corpus" / "msc-neuro-review.zh.txt").read_text(encoding="utf-8")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANSWER_TIMEOUT_MS = 60_000
API_KEY = "page-test-key"

BANG_CHUNG = "为什么Bang和Chung的研究结论不一致？"
LEVY = "Levy等人2019年的卒中试验是怎么做的？"
DOSE = "那剂量是多少？"
ALS = "MSC治疗肌萎缩侧索硬化的临床效果如何？"


# ---------------------------------------------------------------- server and browser


@contextmanager
def serve(assistant=None, app=None):
    """The real app for ``assistant`` (or ``app`` itself) on 127.0.0.1 and a free port; stopped on exit in all cases."""
    import uvicorn

    from api.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app or create_app(assistant=assistant), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the app server exited during startup")
            if time.monotonic() > deadline:
                raise RuntimeError("the app server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as r:  # loopback only
        return r.status, r.headers.get("content-type", ""), r.read().decode("utf-8")


@pytest.fixture(scope="module")
def base_url(real_pipeline):
    from rag.service import Assistant

    with serve(Assistant(real_pipeline)) as url:
        # It is the real app: GET / is the page, /health reports the real index.
        status, ctype, body = _get(url + "/")
        assert status == 200 and ctype.startswith("text/html")
        assert 'id="conversation"' in body and 'id="question"' in body
        health = json.loads(_get(url + "/health")[2])
        assert health["status"] == "ok" and health["documents"] >= 1 and health["auth_required"] is False
        yield url


@pytest.fixture(scope="module")
def keyed_url(real_pipeline):
    """The same pipeline behind an API key (settings copied, nothing rebuilt)."""
    from rag.service import Assistant

    pipeline = dataclasses.replace(real_pipeline, settings=real_pipeline.settings.model_copy(update={"api_key": API_KEY}))
    with serve(Assistant(pipeline)) as url:
        assert json.loads(_get(url + "/health")[2])["auth_required"] is True
        yield url


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Chat:
    """The page, with the /ask/stream request bodies it sent and the console errors it logged."""

    def __init__(self, page, url: str):
        self.page = page
        self.asked: list[dict] = []
        self.errors: list[str] = []
        page.on("request", self._on_request)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("#question:enabled")

    def _on_request(self, request) -> None:
        if request.url.endswith("/ask/stream"):
            self.asked.append(json.loads(request.post_data or "null"))

    def answers(self):
        return self.page.locator("#conversation .msg.assistant")

    def ask(self, question: str, *, expect: str = "done"):
        """Type the question, press Enter, wait until its answer (or error) is complete; return that bubble."""
        page = self.page
        before_done = page.locator("#conversation .msg.assistant[data-state=done]").count()
        before_err = page.locator("#conversation .msg.error").count()
        page.fill("#question", question)
        page.press("#question", "Enter")
        if expect == "done":
            page.wait_for_function(
                "n => document.querySelectorAll('#conversation .msg.assistant[data-state=done]').length > n "
                "|| document.querySelectorAll('#conversation .msg.error').length > 0",
                arg=before_done, timeout=ANSWER_TIMEOUT_MS)
            assert page.locator("#conversation .msg.error").count() == before_err, self.text("#conversation")
            page.wait_for_selector("#question:enabled", timeout=ANSWER_TIMEOUT_MS)
            return page.locator("#conversation .msg.assistant[data-state=done]").nth(before_done)
        page.wait_for_function("n => document.querySelectorAll('#conversation .msg.error').length > n",
                               arg=before_err, timeout=ANSWER_TIMEOUT_MS)
        page.wait_for_selector("#question:enabled", timeout=ANSWER_TIMEOUT_MS)
        return page.locator("#conversation .msg.error").nth(before_err)

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()


@pytest.fixture
def open_page(browser):
    """A fresh context (empty storage) per test; closed in all cases."""
    contexts = []

    def opener(url: str, **options) -> Chat:
        context = browser.new_context(**options)
        context.set_default_timeout(ANSWER_TIMEOUT_MS)
        contexts.append(context)
        return Chat(context.new_page(), url)

    try:
        yield opener
    finally:
        for context in contexts:
            context.close()


# ---------------------------------------------------------------- tests


def test_cited_answer_with_clickable_citations(base_url, open_page, tmp_path):
    chat = open_page(base_url, viewport={"width": 1100, "height": 900})
    page = chat.page
    health = json.loads(_get(base_url + "/health")[2])
    page.wait_for_function("() => document.getElementById('footer').textContent.includes('篇文档')")
    footer = chat.text("#footer")
    assert f"{health['documents']} 篇文档" in footer and f"{health['chunks']} 个片段" in footer
    assert health["model_id"] in footer
    assert page.locator("#api-key").is_hidden()  # no key needed on this server

    # Record whether the box is disabled at the moment the answer bubble appears (the stream is fast).
    page.evaluate("""() => {
        window.__disabledWhileStreaming = [];
        new MutationObserver(() => {
            if (document.querySelector('#conversation .msg.assistant[data-state=streaming]'))
                window.__disabledWhileStreaming.push(document.getElementById('question').disabled);
        }).observe(document.getElementById('conversation'), {childList: true, subtree: true});
    }""")
    answer = chat.ask(BANG_CHUNG)
    assert page.evaluate("window.__disabledWhileStreaming")[0] is True
    assert chat.asked == [{"question": BANG_CHUNG, "history": []}]

    text = answer.locator(".answer").inner_text()
    assert "培养方案" in text
    markers = answer.locator(".cite")
    assert markers.count() >= 1
    assert answer.locator(".answer.abstain").count() == 0
    assert answer.locator(".sources li").count() >= 1  # the sources listed under the answer
    assert chat.page.locator("#conversation .msg.user").first.inner_text().endswith(BANG_CHUNG)

    detail = answer.locator(".citation-detail")
    assert detail.count() == 0 or detail.is_hidden()
    markers.first.click()
    detail.wait_for(state="visible")
    quote = detail.locator(".quote").inner_text()
    assert len(quote) > 20 and quote in REVIEW_TEXT
    shown = detail.inner_text()
    assert "间充质干细胞治疗中风的临床案例" in shown
    assert "msc-neuro-review.zh.txt" in shown
    start = REVIEW_TEXT.index(quote)
    assert f"{start}–{start + len(quote)}" in shown  # the span is the quote's real place in the document

    # Every other marker opens its own passage in the same panel; clicking the open one again closes it.
    for i in range(1, markers.count()):
        markers.nth(i).click()
        assert detail.is_visible() and detail.get_attribute("data-n") == markers.nth(i).get_attribute("data-n")
        assert detail.locator(".quote").inner_text() in REVIEW_TEXT
    markers.first.click()
    assert detail.get_attribute("data-n") == markers.first.get_attribute("data-n")
    markers.first.click()
    assert detail.is_hidden()
    # A source listed under the answer opens the passage too.
    answer.locator(".sources .source").first.click()
    assert detail.is_visible() and detail.locator(".quote").inner_text() == quote

    shot = tmp_path / "page-after-answer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copyfile(shot, "/tmp/page.png")  # for a human look
    assert chat.errors == []


def test_follow_up_sends_history_and_reset_clears_it(base_url, open_page):
    chat = open_page(base_url)
    first = chat.ask(LEVY)
    first_text = first.locator(".answer").inner_text()
    second = chat.ask(DOSE)
    # Asked alone, "那剂量是多少？" is answered from another study (exosome doses); only the history finds Levy's.
    assert "150万个细胞/公斤体重" in second.locator(".answer").inner_text()
    assert second.locator(".cite").count() >= 1

    assert chat.asked[0] == {"question": LEVY, "history": []}
    follow_up = chat.asked[1]
    assert follow_up["question"] == DOSE
    assert [m["role"] for m in follow_up["history"]] == ["user", "assistant"]
    assert follow_up["history"][0]["content"] == LEVY
    assert follow_up["history"][1]["content"] == first_text  # the answer text, markers included

    chat.page.click("#reset")
    assert chat.answers().count() == 0 and chat.page.locator("#conversation .msg").count() == 0
    chat.ask(LEVY)
    assert chat.asked[2] == {"question": LEVY, "history": []}
    assert chat.errors == []


def test_unanswerable_question_is_shown_as_abstention(base_url, open_page):
    chat = open_page(base_url)
    answer = chat.ask(ALS)
    assert answer.locator(".answer.abstain").count() == 1
    assert answer.locator(".cite").count() == 0
    assert answer.locator(".sources").count() == 0
    assert answer.locator(".answer").inner_text().strip()
    assert chat.errors == []


def test_empty_question_is_not_sent_and_errors_do_not_break_the_page(base_url, open_page):
    chat = open_page(base_url)
    page = chat.page
    page.fill("#question", "   \n  ")
    page.press("#question", "Enter")
    page.click("#send")
    page.wait_for_timeout(300)
    assert chat.asked == []
    assert page.locator("#conversation .msg").count() == 0
    assert "请输入问题" in chat.text("#status")

    # Shift+Enter is a newline, not a send.
    page.fill("#question", "第一行")
    page.press("#question", "Shift+Enter")
    page.wait_for_timeout(200)
    assert chat.asked == [] and "\n" in page.input_value("#question")

    # A question over the server's limit (500) is not sent: it stays in the box to be shortened.
    page.fill("#question", "问" * 600)
    page.press("#question", "Enter")
    page.wait_for_timeout(200)
    assert chat.asked == [] and page.input_value("#question") == "问" * 600
    assert "too long (600 characters; the limit is 500)" in chat.text("#status")
    assert "600 / 500" in chat.text("#counter")
    assert chat.answers().count() == 0

    # The page still works, and the refused question is not in the history.
    answer = chat.ask(BANG_CHUNG)
    assert "培养方案" in answer.locator(".answer").inner_text()
    assert chat.asked[-1] == {"question": BANG_CHUNG, "history": []}
    assert chat.errors == [] or all("422" in e for e in chat.errors)


def test_event_stream_parser_survives_any_chunking(base_url, open_page):
    """The page's SSE parser, fed the real /ask/stream bytes cut everywhere (inside \\r\\n and UTF-8)."""
    chat = open_page(base_url)
    result = chat.page.evaluate("""async (question) => {
        const r = await fetch('/ask/stream', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                             body: JSON.stringify({question, history: []})});
        const bytes = new Uint8Array(await r.arrayBuffer());
        const parse = (size) => {
            const events = [], parser = SSEParser((name, data) => events.push([name, data]));
            const decoder = new TextDecoder();
            for (let i = 0; i < bytes.length; i += size)
                parser.push(decoder.decode(bytes.subarray(i, i + size), {stream: true}));
            parser.push(decoder.decode());
            parser.end();
            return JSON.stringify(events);
        };
        const whole = parse(bytes.length);
        const sizes = [1, 2, 3, 5, 7, 64];
        return {whole: JSON.parse(whole), same: sizes.map(s => parse(s) === whole)};
    }""", BANG_CHUNG)
    assert all(result["same"]), result["same"]
    events = result["whole"]
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"delta"}
    done = json.loads(events[-1][1])
    assert "".join(json.loads(d)["text"] for _, d in events[:-1]) == done["answer"]


def test_api_key_is_asked_for_and_sent(keyed_url, open_page):
    chat = open_page(keyed_url)
    page = chat.page
    page.wait_for_selector("#api-key", state="visible")

    error = chat.ask(BANG_CHUNG, expect="error")
    assert "An API key is needed: enter it above" in error.inner_text()
    assert page.input_value("#question") == BANG_CHUNG  # the question waits in the box

    # With the key entered, Retry asks the same question again in place of the failed attempt.
    page.fill("#api-key", API_KEY)
    error.locator(".retry").click()
    answer = page.locator("#conversation .msg.assistant[data-state=done]").first
    answer.wait_for()
    assert answer.locator(".cite").count() >= 1
    assert page.locator("#conversation .msg.error").count() == 0
    assert page.locator("#conversation .msg.user").count() == 1 and page.input_value("#question") == ""
    assert page.evaluate("localStorage.getItem('rag.apiKey')") == API_KEY

    page.reload()
    page.wait_for_selector("#api-key", state="visible")
    assert page.input_value("#api-key") == API_KEY  # remembered
    sent = []
    page.on("request", lambda r: sent.append(r.headers.get("authorization")) if r.url.endswith("/ask/stream") else None)
    chat.ask(ALS)
    assert sent == [f"Bearer {API_KEY}"]


def test_phone_width_has_no_horizontal_scroll(base_url, open_page):
    chat = open_page(base_url, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    answer = chat.ask(BANG_CHUNG)
    answer.locator(".cite").first.click()
    overflow = chat.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    assert chat.page.locator("#send").is_visible() and chat.page.locator("#reset").is_visible()


def test_why_answer_marks_its_reason_inside_the_quote_without_repeating_it(base_url, open_page):
    chat = open_page(base_url, viewport={"width": 1100, "height": 900})
    answer = chat.ask("为什么Bang和Chung的研究结论不一致？")
    marked = answer.locator(".answer mark.short")
    assert marked.count() == 1 and "差异可能源于" in marked.inner_text()
    text = answer.locator(".answer").inner_text()
    assert text.count(marked.inner_text()) == 1 and not text.startswith(marked.inner_text() + "——")
    assert chat.errors == []


def test_short_answer_leads_and_is_marked_in_its_quote(base_url, open_page):
    chat = open_page(base_url, viewport={"width": 1100, "height": 900})
    answer = chat.ask("Kim等人的试验纳入了几例患者？")
    lead = answer.locator(".answer mark.short")
    assert lead.count() == 1 and lead.inner_text() == "9例"
    answer.locator(".cite").first.click()
    detail = answer.locator(".citation-detail")
    detail.wait_for(state="visible")
    marked = detail.locator(".quote mark.short")
    assert marked.count() == 1 and marked.inner_text() == "9例"
    quote = detail.locator(".quote").inner_text()
    assert quote in REVIEW_TEXT and "研究共纳入9例患者" in quote
    assert chat.errors == []


def test_footer_shows_the_index_build_then_the_counts(open_page, tmp_path):
    """A server still building its index: the footer says how far, a question gets the 503's reason, then it serves."""
    from api.app import create_app
    from rag.answer.answer_models import load_answer_models
    from rag.config import Settings
    from tests.test_health_progress import DOC, Gate, gated_opener

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "review.txt").write_text(DOC, encoding="utf-8")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                        embedding_model="hash-test")
    gate = Gate()
    with serve(app=create_app(settings, opener=gated_opener(gate, load_answer_models()))) as url:
        try:
            assert gate.halfway.wait(30)
            chat = open_page(url)
            page = chat.page
            page.wait_for_function("() => document.getElementById('footer').textContent.includes('40%')")
            assert "building index" in chat.text("#footer") and "embedding 10 texts" in chat.text("#footer")
            error = chat.ask("Levy等人的试验纳入了多少例患者？", expect="error")
            assert "the index is still being built: 40%" in error.inner_text()
        finally:
            gate.go.set()
        page.wait_for_function("() => document.getElementById('footer').textContent.includes('1 篇文档')")
        assert chat.errors == [] or all("503" in e for e in chat.errors)
