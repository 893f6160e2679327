"""The first thing every request meets: the API key, then a hard limit on the body as it streams.

Both are checked before any route (or the framework's body parsing) runs, so a client without
the key cannot make the server read, buffer or spool a single byte of its body, and no client
can make it hold more than the limit: a chunked body, which has no ``Content-Length``, is cut
off at the limit with 413 like any other. The body is read here (at most the limit) and handed
to the app as it came.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths open without the key: readiness, and the chat page and source viewer (static; they ask
# for the key themselves). The API's description (/docs, /redoc, /openapi.json) stays behind the
# key like the API; only the Swagger UI and ReDoc library files they load are open.
PUBLIC_PATHS = frozenset({"/health", "/", "/view"})
PUBLIC_PREFIXES = ("/docs-assets/",)


def key_matches(authorization: str, expected: str) -> bool:
    """Whether an ``Authorization`` header carries the expected Bearer token (constant-time compare)."""
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), expected.encode())


def is_public(path: str) -> bool:
    """Whether ``path`` is served without the API key."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class RequestGuard:
    """ASGI middleware: refuse a request without the key (401) or with a body over its limit (413)."""

    def __init__(self, app: ASGIApp, api_key: Callable[[], str | None], body_limit: Callable[[str], int]):
        self.app = app
        self.api_key = api_key
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        expected = self.api_key()
        if expected and not is_public(scope["path"]) and not key_matches(headers.get("authorization", ""), expected):
            await _reply(send, 401, "missing or wrong API key", {"www-authenticate": "Bearer"})
            return
        limit = self.body_limit(scope["path"])
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _reply(send, 413, f"request body larger than {limit} bytes")
            return
        body = await _read_at_most(receive, limit)
        if body is None:
            await _reply(send, 413, f"request body larger than {limit} bytes")
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes (the rest is never read)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body already read, then waits on the real one (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _reply(send: Send, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
    """A JSON ``{"detail": ...}`` response, sent without reading the request body."""
    payload = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               (b"connection", b"close")]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
