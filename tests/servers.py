"""Run an ASGI app with uvicorn in a thread on 127.0.0.1 and a free port (loopback only); wait for a
`rag serve` process to finish opening its index."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import httpx
import uvicorn


def free_port() -> int:
    """A port nothing on loopback listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """Context manager: start the app, expose ``base_url``, stop it on exit."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


def wait_until_ready(base_url: str, proc: subprocess.Popen, timeout_s: float = 180) -> list[dict]:
    """Poll ``/health`` until it says ``ok``; returns every answer seen. The server listens while
    it loads and builds, so an answer alone (even a 200) does not mean it is ready."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            health = httpx.get(base_url + "/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        seen.append(health)
        if health["status"] in ("ok", "error"):
            if health["status"] == "error":
                raise RuntimeError(f"the server could not start: {health['error']}")
            return seen
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready in {timeout_s} s (exit code {proc.poll()})")
