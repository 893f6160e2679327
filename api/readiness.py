"""Opening the assistant without holding up the server.

Loading the model and building a missing or stale index can take minutes, so ``rag serve``
listens at once and opens the assistant in a background thread: meanwhile ``/health`` says how
far it is and every route that needs the index answers 503 with a ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import HTTPException, status

from rag import progress
from rag.config import Settings
from rag.errors import RagError, StoreUnavailable
from rag.indexing import lifecycle
from rag.service import Assistant

log = logging.getLogger("api")
# Seconds a client is asked to wait before trying again while the index is being built.
RETRY_AFTER_S = 5
# Seconds between attempts to open the assistant while its Postgres store is unreachable.
STORE_RETRY_S = 2

Status = Literal["loading", "building", "ok", "error"]
Opener = Callable[[Settings], Assistant]


@dataclass(frozen=True)
class State:
    """Where opening is: the assistant once it is ``ok``, the one-line reason once it is ``error``."""

    status: Status
    assistant: Assistant | None = None
    error: str | None = None


class Readiness:
    """The server's assistant, or how far opening it is; swapped whole, so readers need no lock."""

    def __init__(self, settings: Settings, assistant: Assistant | None = None, opener: Opener = Assistant.open):
        self._settings = settings
        self._opener = opener
        self.state = State("ok", assistant) if assistant is not None else State("loading")
        self._thread: threading.Thread | None = None

    @property
    def settings(self) -> Settings:
        """The open assistant's settings, or those it is being opened with."""
        assistant = self.state.assistant
        return assistant.settings if assistant is not None else self._settings

    def open_in_background(self) -> threading.Thread:
        """Start opening the assistant in a daemon thread (a stop while it builds need not wait); once only."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._open, name="open-assistant", daemon=True)
            self._thread.start()
        return self._thread

    def _open(self) -> None:
        try:
            assistant = self._open_when_reachable()
        except Exception as exc:  # the server stays up to say why on /health
            self.state = State("error", error=one_line(exc))
            log.error(json.dumps({"event": "failed", "error": self.state.error}, ensure_ascii=False),
                      exc_info=bool(os.environ.get("RAG_DEBUG")))
            return
        self.state = State("ok", assistant)
        log.info(json.dumps({"event": "ready", "documents": len(assistant.pipeline.index.documents)}))

    def _open_when_reachable(self) -> Assistant:
        """Open the assistant; while its Postgres store is unreachable, say so and try again."""
        while True:
            try:
                if lifecycle.rebuild_reasons(self._settings):  # cheap: hashes the corpus, loads nothing
                    self.state = State("building")
                return self._opener(self._settings)
            except StoreUnavailable as exc:
                self.state = State("error", error=one_line(exc))
                log.error(json.dumps({"event": "store unreachable", "error": self.state.error}, ensure_ascii=False))
                time.sleep(STORE_RETRY_S)

    def unavailable(self) -> HTTPException:
        """The 503 for a route that needs the index before it is open: how far it is, or why it failed."""
        state = self.state
        if state.status == "error":
            return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"the assistant could not start: {state.error}")
        what = "the index is still being built" if state.status == "building" else "the model and index are still loading"
        now = progress.current()
        detail = f"{what}: {now.describe()}" if now is not None else what
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail, headers={"Retry-After": str(RETRY_AFTER_S)})


def one_line(exc: Exception) -> str:
    """An error as one line: a library error's own message, anything else named by its type."""
    text = str(exc) if isinstance(exc, RagError) else f"unexpected {type(exc).__name__}: {exc}"
    return " ".join(text.split())
