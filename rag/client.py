"""Asking a running server: what `rag ask --server URL` and `rag search --server URL` use.

A server keeps the model loaded, so a question costs its answer (tens of milliseconds), not
the model load (seconds) that a standalone `rag ask` pays every time.
"""

from __future__ import annotations

import json

import httpx

from rag.errors import ServerError
from rag.schema import Answer, Passage

TIMEOUT_S = 120.0  # a server may be busy rebuilding after an upload


class RemoteAssistant:
    """The ``ask`` and ``search`` of a ``Pipeline``, answered by the server at ``base_url``."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = TIMEOUT_S):
        if not base_url.startswith(("http://", "https://")):
            raise ServerError(f"server URL must start with http:// or https:// (got {base_url!r})")
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout

    def ask(self, question: str, top_k: int | None = None, documents: list[str] | None = None,
            filters: dict | None = None) -> Answer:
        """The server's cited answer to ``question`` (from ``documents`` and ``filters`` only, when given)."""
        return Answer.model_validate(self._post("/ask", {"question": question, "top_k": top_k, "documents": documents,
                                                         "filters": filters}))

    def search(self, claim: str, top_k: int | None = None, documents: list[str] | None = None,
               filters: dict | None = None) -> list[Passage]:
        """The server's ranked passages for ``claim`` (from ``documents`` and ``filters`` only, when given)."""
        body = self._post("/search", {"claim": claim, "top_k": top_k, "documents": documents, "filters": filters})
        return [Passage.model_validate(p) for p in body["passages"]]

    def add(self, name: str, data: bytes, fields: dict | None = None) -> dict:
        """Upload a document to the server (it indexes it); its listing."""
        form = {"metadata": json.dumps(fields, ensure_ascii=False)} if fields else None
        return self._post("/documents", None, files={"file": (name, data)}, data=form, expect=201)

    def _post(self, path: str, payload: dict | None, expect: int = 200, **extra) -> dict:
        url = self.base_url + path
        body = {"json": {k: v for k, v in payload.items() if v is not None}} if payload is not None else {}
        try:
            response = httpx.post(url, headers=self._headers, timeout=self._timeout, **body, **extra)
        except httpx.TimeoutException:
            raise ServerError(f"the server at {self.base_url} did not answer within {self._timeout:.0f} s") from None
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach the server at {self.base_url}: {exc}") from None
        if response.status_code != expect:
            raise ServerError(f"the server at {self.base_url} answered {response.status_code}: {_detail(response)}")
        try:
            return response.json()
        except ValueError:
            raise ServerError(f"the server at {self.base_url} did not answer with JSON (is it zh-cited-rag?)") from None


def _detail(response: httpx.Response) -> str:
    """The one-line reason a server gave: its ``detail`` text or the first validation message."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.reason_phrase or "no reason given"
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return str(detail[0].get("msg", detail[0]))
    return str(detail or response.reason_phrase)
