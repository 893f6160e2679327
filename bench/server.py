"""Measurements through real processes: `rag ask` cold start, and `rag serve` over HTTP on loopback."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import CORPUS, interleaved, peak_rss_mb, rss_mb, stats_ms, subprocess_env

STARTUP_TIMEOUT_S = 180


def rag_command() -> list[str]:
    """The installed `rag` console script next to this interpreter (or the module as a fallback)."""
    script = Path(sys.executable).with_name("rag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


def _env(index_dir: Path, corpus_dir: Path) -> dict:
    return subprocess_env(RAG_CORPUS_DIR=str(corpus_dir), RAG_INDEX_DIR=str(index_dir))


def cli_cold_start(index_dir: Path, question: str, reps: int, corpus_dir: Path = CORPUS) -> dict:
    """Wall time of `rag ask QUESTION --json` with a built index: a new process each time."""
    walls = []
    for _ in range(reps):
        t = time.perf_counter()
        proc = subprocess.run([*rag_command(), "ask", question, "--json"], env=_env(index_dir, corpus_dir), capture_output=True,
                              text=True, timeout=STARTUP_TIMEOUT_S)
        walls.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise RuntimeError(f"rag ask failed ({proc.returncode}): {proc.stderr[-2000:]}")
        answer = json.loads(proc.stdout)
        assert answer["answer"], answer
    walls.sort()
    return {"reps": reps, "wall_s": [round(w, 3) for w in walls], "median_s": round(walls[len(walls) // 2], 3)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`rag serve` on 127.0.0.1 and a free port, in its own process; stopped on exit."""

    def __init__(self, index_dir: Path, corpus_dir: Path = CORPUS):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._cmd = [*rag_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self._env = _env(index_dir, corpus_dir)
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start_to_first_answer(self, question: str, client: httpx.Client) -> float:
        """Start the process and ask until the first answer arrives; seconds from start."""
        t = time.perf_counter()
        self._log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a full pipe would block the server
        self.proc = subprocess.Popen(self._cmd, env=self._env, stdout=subprocess.DEVNULL, stderr=self._log, text=True)
        while True:
            if self.proc.poll() is not None:
                self._log.seek(0)
                raise RuntimeError(f"rag serve exited with {self.proc.returncode}: {self._log.read()[-2000:]}")
            if time.perf_counter() - t > STARTUP_TIMEOUT_S:
                raise RuntimeError("rag serve did not answer in time")
            try:
                r = client.post(f"{self.url}/ask", json={"question": question}, timeout=30)
                if r.status_code == 200 and r.json().get("answer"):
                    return time.perf_counter() - t
            except httpx.TransportError:
                pass
            time.sleep(0.05)

    def memory_mb(self) -> dict:
        """Current and peak resident memory of the server process."""
        return {"rss_mb": round(rss_mb(self.proc.pid), 1), "peak_rss_mb": round(peak_rss_mb(self.proc.pid), 1)}

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully on SIGINT
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()


def http(index_dir: Path, questions: list[str], passes: int, restarts: int, corpus_dir: Path = CORPUS) -> dict:
    """Start-to-first-answer, /search and /ask latency over HTTP, and the server's memory."""
    out: dict = {}
    with httpx.Client() as client:
        server = Server(index_dir, corpus_dir)
        try:
            first = [server.start_to_first_answer(questions[0], client)]
            mem_ready = server.memory_mb()
            for q in questions[:3]:  # warm: connection, first requests
                client.post(f"{server.url}/search", json={"claim": q}, timeout=30).raise_for_status()
            calls = questions * passes

            def post(path: str, key: str):
                return lambda q: client.post(f"{server.url}{path}", json={key: q}, timeout=30).raise_for_status()

            timings = interleaved({"/search": post("/search", "claim"), "/ask": post("/ask", "question")}, calls, warmup=0)
            out["latency"] = {k: stats_ms(v) for k, v in timings.items()}
            out["calls_per_endpoint"] = len(calls)
            out["memory"] = {"after_start": mem_ready, "after_load": server.memory_mb()}
        finally:
            server.stop()
        for _ in range(restarts):
            again = Server(index_dir, corpus_dir)
            try:
                first.append(again.start_to_first_answer(questions[0], client))
            finally:
                again.stop()
    first.sort()
    out["start_to_first_answer_s"] = [round(x, 3) for x in first]
    out["start_to_first_answer_median_s"] = round(first[len(first) // 2], 3)
    return out
