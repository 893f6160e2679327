"""Load test of the real server on loopback: concurrent clients mixing every question endpoint.

    python tools/loadtest.py --clients 32 --duration 60            # the full run (figures in docs/)
    python tools/loadtest.py --clients 32 --duration 60 --churn    # while documents are added and deleted
    python tools/loadtest.py --url http://127.0.0.1:8001 --url http://127.0.0.1:8002   # two servers, one database

It starts `rag serve` on a free loopback port over a private copy of the corpus (so churn never
touches the repository), runs for a bounded time and request count, then stops the server.
Every response is checked: HTTP 200, well-formed, and every citation quotes its document exactly
(a mixed old/new index would cite spans that do not match the text). Exit code 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "为什么Bang和Chung的研究结论不一致？",
    "Kim等人的试验纳入了几例患者？",
    "Xie等人的外泌体试验随访到第几周？",
    "MSC治疗肌萎缩侧索硬化的临床效果如何？",
    "How many patients did Levy et al. treat?",
    "静脉输注后为什么只有少量细胞到达靶组织？",
]
CHURN_NAME = "churn-note.txt"
CHURN_TEXT = "一项虚构的观察发现，海藻酸钠凝胶让培养的细胞存活时间延长到了十四天。\n这一结果仅用于负载测试。\n"
CHURN_QUESTION = "海藻酸钠凝胶让细胞存活时间延长到了多少天？"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workdir: Path, port: int, index_seed: Path | None) -> subprocess.Popen:
    """`rag serve` over a private corpus and index, on loopback."""
    corpus, index = workdir / "corpus", workdir / "index"
    shutil.copytree(ROOT / "corpus", corpus)
    if index_seed and index_seed.is_dir():
        shutil.copytree(index_seed, index)  # saves building from scratch when a built index is at hand
    env = os.environ | {"RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1"}
    # The server logs a line per request: into a file, since a pipe nobody reads fills up
    # (64 KiB) and then blocks the server mid-run.
    with open(workdir / "server.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=log, text=True)


async def wait_ready(client: httpx.AsyncClient, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            # The server answers /health while it loads and builds: ready means "ok".
            if (await client.get("/health")).json().get("status") == "ok":
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.25)
    raise RuntimeError("server did not become ready")


async def check_citations(client: httpx.AsyncClient, citations: list[dict], texts: dict[str, str]) -> str | None:
    """None when every citation quotes its document exactly; else what is wrong. A document the
    tool does not hold (a server over another corpus) is read once from ``/documents/{id}/text``."""
    for c in citations:
        if c["doc_id"] not in texts:
            r = await client.get(f"/documents/{quote(c['doc_id'], safe='')}/text")
            texts[c["doc_id"]] = r.json()["text"] if r.status_code == 200 else None
        text = texts[c["doc_id"]]
        if text is None or text[c["start"]:c["end"]] != c["text"]:
            return f"citation {c.get('n')} of {c['doc_id']} does not match the document"
    return None


async def one_request(client: httpx.AsyncClient, kind: str, question: str) -> str | list[dict]:
    """Send one request of the given kind; its citations when the response is good, else the problem."""
    if kind == "ask":
        r = await client.post("/ask", json={"question": question})
        if r.status_code != 200:
            return f"/ask {r.status_code}"
        return r.json()["citations"]
    if kind == "stream":
        r = await client.post("/ask/stream", json={"question": question})
        if r.status_code != 200 or "event: done" not in r.text:
            return f"/ask/stream {r.status_code}"
        done = r.text.split("event: done", 1)[1].split("data:", 1)[1].split("\n\n", 1)[0].strip()
        return json.loads(done)["citations"]
    if kind == "search":
        r = await client.post("/search", json={"claim": question})
        if r.status_code != 200:
            return f"/search {r.status_code}"
        return r.json()["passages"]
    r = await client.post("/v1/chat/completions", json={"model": "zh-cited-rag", "messages": [{"role": "user", "content": question}]})
    if r.status_code != 200:
        return f"/v1/chat/completions {r.status_code}"
    return r.json()["citations"]


async def worker(client, stop_at, max_requests, counter, latencies, errors, texts, churn, rng):
    kinds = ["ask", "stream", "search", "chat"]
    while time.monotonic() < stop_at and counter[0] < max_requests:
        counter[0] += 1
        kind = rng.choice(kinds)
        question = CHURN_QUESTION if churn and rng.random() < 0.3 else rng.choice(QUESTIONS)
        t0 = time.perf_counter()
        try:
            outcome = await one_request(client, kind, question)
        except httpx.HTTPError as exc:
            outcome = f"{kind}: {type(exc).__name__}"
        latencies.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
        # Checked after the clock stops: reading a document's text is not part of the request.
        try:
            problem = outcome if isinstance(outcome, str) else await check_citations(client, outcome, texts)
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:  # counted, never a crash of the tool
            problem = f"{kind}: checking its citations failed: {type(exc).__name__}: {exc}"
        if problem:
            errors.append(problem)


async def churner(client, stop_at, errors, counts):
    """Add and delete a document in a loop while the clients ask."""
    while time.monotonic() < stop_at:
        try:
            r = await client.post("/documents", files={"file": (CHURN_NAME, CHURN_TEXT.encode(), "text/plain")})
            if r.status_code != 201:
                errors.append(f"upload {r.status_code}")
            counts["add"] += 1
            await asyncio.sleep(0.5)
            r = await client.delete(f"/documents/{CHURN_NAME}")
            if r.status_code != 204:
                errors.append(f"delete {r.status_code}")
            counts["delete"] += 1
        except httpx.TransportError as exc:  # counted like the clients' failures, not a crash of the tool
            errors.append(f"churn: {type(exc).__name__}")
        await asyncio.sleep(0.5)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def run(args) -> dict:
    texts = {"msc-neuro-review.zh.txt": (ROOT / "corpus" / "msc-neuro-review.zh.txt").read_text(encoding="utf-8"),
             CHURN_NAME: CHURN_TEXT}
    port = args.port or free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.url else start_server(Path(tmp), port, args.index_seed)
        bases = args.url or [f"http://127.0.0.1:{port}"]
        try:
            limits = httpx.Limits(max_connections=args.clients + 4)
            async with contextlib.AsyncExitStack() as stack:
                # Several servers (one shared store): the clients are dealt out to them in turn.
                clients = [await stack.enter_async_context(httpx.AsyncClient(base_url=b, timeout=120, limits=limits))
                           for b in bases]
                client = clients[0]
                for each in clients:
                    await wait_ready(each, 300)
                rng = random.Random(7)
                counter, latencies, errors, counts = [0], {}, [], {"add": 0, "delete": 0}
                start = time.monotonic()
                stop_at = start + args.duration
                tasks = [worker(clients[i % len(clients)], stop_at, args.max_requests, counter, latencies, errors, texts,
                                args.churn, random.Random(rng.random()))
                         for i in range(args.clients)]
                if args.churn:
                    tasks.append(churner(client, stop_at, errors, counts))
                await asyncio.gather(*tasks)
                elapsed = time.monotonic() - start
        finally:
            if server:
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
    all_ms = [v for vs in latencies.values() for v in vs]
    return {
        "clients": args.clients, "servers": len(args.url or [None]), "duration_s": round(elapsed, 1), "requests": len(all_ms), "errors": len(errors),
        "error_examples": errors[:5], "throughput_rps": round(len(all_ms) / elapsed, 1),
        "p50_ms": round(percentile(all_ms, 0.5), 1), "p95_ms": round(percentile(all_ms, 0.95), 1),
        "p99_ms": round(percentile(all_ms, 0.99), 1),
        "by_endpoint": {k: {"n": len(v), "p50_ms": round(statistics.median(v), 1)} for k, v in latencies.items()},
        "churn": counts if args.churn else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (bounded)")
    parser.add_argument("--max-requests", type=int, default=100_000, help="stop after this many requests")
    parser.add_argument("--churn", action="store_true", help="add and delete a document during the run")
    parser.add_argument("--url", action="append",
                        help="test a server already running on loopback instead of starting one (repeat for several)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--index-seed", type=Path, help="a built index folder to copy instead of building")
    args = parser.parse_args(argv)
    if args.url and not all(u.startswith(("http://127.", "http://localhost", "http://[::1]")) for u in args.url):
        parser.error("only loopback addresses may be load-tested")
    result = asyncio.run(run(args))
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
