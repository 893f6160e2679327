"""Hardening against a hostile client, through a real `rag serve` process on loopback.

Bodies are bounded while they stream (chunked bodies included) and refused before they are read
when the key is missing; no string JSON can carry gives a 5xx; questions without content are 422;
the API docs follow the key; start-up removes builds a killed process left behind.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import private_corpus
from tests.servers import free_port, wait_until_ready

pytestmark = pytest.mark.slow
KEY = "test-key-123"
UPLOAD_LIMIT = 200_000
JSON_LIMIT = 256_000  # api/app.py MAX_JSON_BODY
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def served(real_pipeline, tmp_path_factory):
    """A `rag serve` process with a key, a private corpus and its own temporary-files folder."""
    root = tmp_path_factory.mktemp("served")
    settings, _ = private_corpus(real_pipeline, root)
    spool = root / "spool"
    spool.mkdir()
    port = free_port()
    env = os.environ | {
        "RAG_CORPUS_DIR": str(settings.corpus_dir), "RAG_INDEX_DIR": str(settings.index_dir),
        "RAG_API_KEY": KEY, "RAG_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT), "TMPDIR": str(spool),
    }
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(root / "server.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError((root / "server.log").read_text()) from None
    yield proc, base, port, spool
    proc.terminate()
    proc.wait(timeout=30)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def _folder_bytes(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        try:
            total += p.stat().st_size if p.is_file() else 0
        except FileNotFoundError:
            pass
    return total


def _send_chunked(port: int, path: str, headers: dict[str, str], total: int) -> tuple[int, int]:
    """Stream ``total`` bytes as a chunked body until the server answers; (status, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent, chunk = 0, b"x" * CHUNK
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered: stop sending
            sock.sendall(frame)
            sent += len(chunk)
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(30)
    reply = b""
    try:
        while b"\r\n" not in reply:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1") else 0
    return status, sent


@pytest.mark.parametrize("path,content_type,limit", [
    ("/documents", "multipart/form-data; boundary=b", UPLOAD_LIMIT),
    ("/ask", "application/json", JSON_LIMIT),
])
@pytest.mark.parametrize("with_key", [False, True])
def test_chunked_body_far_past_the_limit_is_cut_off(served, path, content_type, limit, with_key):
    proc, base, port, spool = served
    peak_before = _peak_rss_kib(proc.pid)
    spool_before = _folder_bytes(spool)  # jieba keeps its dictionary cache there
    largest_spool = [spool_before]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            largest_spool[0] = max(largest_spool[0], _folder_bytes(spool))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    headers = {"Content-Type": content_type}
    if with_key:
        headers["Authorization"] = f"Bearer {KEY}"
    status, sent = _send_chunked(port, path, headers, total=40 * limit)
    stop.set()
    watcher.join()
    assert status == (413 if with_key else 401)
    grown_kib = _peak_rss_kib(proc.pid) - peak_before
    assert grown_kib * 1024 <= limit + 16 * 1024 * 1024, f"peak RSS grew {grown_kib} KiB"  # the limit, plus allocator slack
    assert largest_spool[0] - spool_before <= limit + CHUNK
    assert sent < 40 * limit  # the server answered long before the body ended
    assert httpx.get(base + "/health", timeout=10).status_code == 200  # and it still serves


def test_unauthenticated_request_is_refused_before_its_body_is_read(served):
    proc, base, port, spool = served
    started = time.monotonic()
    status, sent = _send_chunked(port, "/ask", {"Content-Type": "application/json"}, total=4 * JSON_LIMIT)
    assert status == 401 and sent <= 2 * CHUNK + 64 * 1024 * 16  # at most what the socket buffers took
    assert time.monotonic() - started < 10


def _post_json(base: str, path: str, body: dict) -> httpx.Response:
    # ensure_ascii keeps lone surrogates as \ud800 escapes: valid JSON text that Python can send.
    return httpx.post(base + path, content=json.dumps(body).encode(), timeout=60,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})


ANY_TEXT = st.lists(st.one_of(
    st.integers(0, 0x10FFFF).map(chr),  # every code point, lone surrogates included
    st.sampled_from(["\u200b", "\ufeff", "\u2060", "\u00ad", "\u0301", "\u202e", "卒中", "MSCs", "?", "。"]),
), min_size=0, max_size=12).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=ANY_TEXT)
def test_no_string_gives_a_server_error(served, text):
    _, base, _, _ = served
    for path, body in (("/ask", {"question": text}), ("/ask/stream", {"question": text}), ("/search", {"claim": text}),
                       ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": text}]})):
        response = _post_json(base, path, body)
        assert response.status_code < 500, (path, repr(text), response.text)


@pytest.mark.parametrize("question", ["???", "。", "\u200b", "\ufeff\ufeff", "\u2060\u2060", "\u00ad", "  \u200b ", "！？……"])
def test_question_without_letters_digits_or_cjk_is_422(served, question):
    _, base, _, _ = served
    for path, body in (("/ask", {"question": question}), ("/search", {"claim": question})):
        response = _post_json(base, path, body)
        assert response.status_code == 422 and "no letters" in response.text, response.text


def test_lone_surrogate_question_is_422_not_500(served):
    _, base, _, _ = served
    for path, body in (("/ask", {"question": "\ud800卒中"}), ("/ask/stream", {"question": "\ud800卒中"}),
                       ("/search", {"claim": "\udfff"})):
        response = _post_json(base, path, body)
        assert response.status_code == 422 and "surrogate" in response.text, response.text


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_api_docs_need_the_key_when_one_is_set(served, path):
    _, base, _, _ = served
    assert httpx.get(base + path, timeout=10).status_code == 401
    assert httpx.get(base + path, timeout=10, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_page_and_health_stay_open(served):
    _, base, _, _ = served
    assert httpx.get(base + "/", timeout=10).status_code == 200
    assert httpx.get(base + "/health", timeout=10).status_code == 200


def test_cli_refuses_a_question_without_content():
    result = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "\u200b？"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no letters" in result.stderr and "Traceback" not in result.stderr
