"""Keeping a server's view current on the Postgres store: a daemon thread asks the database
for its generation every ``store_poll_s`` seconds over one kept connection, and swaps in the
refreshed view when another server changed documents. It also says whether the database is
reachable, which the API turns into 503s and ``/health``."""

from __future__ import annotations

import dataclasses
import logging
import threading

from rag.errors import RagError, StoreUnavailable
from rag.indexing.pg import store
from rag.indexing.pg.connection import open_connection

log = logging.getLogger(__name__)


class Follower:
    """Polls the store for an assistant; ``error`` is why the database is unreachable, or None."""

    def __init__(self, assistant):
        self.assistant = assistant
        self.error: str | None = None
        self._conn = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-follower", daemon=True)

    def start(self) -> "Follower":
        """Start polling in the background; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling and close the connection."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._close()

    def poll(self) -> bool:
        """Bring the assistant's view up to the database once; True when it changed."""
        assistant = self.assistant
        try:
            if self._conn is None or self._conn.closed:
                self._conn = open_connection(store.url_of(assistant.settings))
            with assistant.write_lock:  # a writer's own change and this one never race
                current = assistant.pipeline
                fresh = store.refresh(current.settings, current.index, self._conn)
                if fresh is not None:
                    assistant.pipeline = dataclasses.replace(current, index=fresh)
        except StoreUnavailable as exc:
            if self.error is None:
                log.error("Postgres store unreachable: %s", exc)
            self.error = str(exc)
            self._close()
            return False
        except RagError as exc:
            self.error = str(exc)
            log.error("Postgres store refresh failed: %s", exc)
            self._close()
            return False
        if self.error is not None:
            log.warning("Postgres store reachable again")
        self.error = None
        if fresh is not None:
            log.info("view refreshed to generation %s: %s", fresh.manifest["generation"], fresh.manifest["counts"])
        return fresh is not None

    def _run(self) -> None:
        while not self._stop.wait(self.assistant.settings.store_poll_s):
            self.poll()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # a dead connection may fail to close; it is dropped either way
                pass
