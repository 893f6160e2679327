"""Opening a server whose Postgres store is unreachable: /health's state says so, and opening is
retried until the database answers (api.readiness). Fake opener, no model, no database."""

from __future__ import annotations

from types import SimpleNamespace

from api import readiness as readiness_mod
from api.readiness import Readiness
from rag.config import Settings
from rag.errors import StoreUnavailable


def test_readiness_retries_while_the_store_is_unreachable(monkeypatch):
    monkeypatch.setattr(readiness_mod, "STORE_RETRY_S", 0.01)
    monkeypatch.setattr(readiness_mod.lifecycle, "rebuild_reasons", lambda settings: [])
    opened = SimpleNamespace(pipeline=SimpleNamespace(index=SimpleNamespace(documents={"a.txt": None})))
    seen = []

    def opener(settings):
        seen.append((readiness.state.status, readiness.state.error))
        if len(seen) < 3:
            raise StoreUnavailable("cannot reach the Postgres store: connection refused")
        return opened

    readiness = Readiness(Settings(store="postgresql://u@/db?host=/nowhere"), opener=opener)
    readiness._open()
    assert seen[0] == ("loading", None)
    assert seen[1:] == [("error", "cannot reach the Postgres store: connection refused")] * 2
    assert readiness.state.status == "ok" and readiness.state.assistant is opened


def test_readiness_gives_up_on_other_errors(monkeypatch):
    monkeypatch.setattr(readiness_mod.lifecycle, "rebuild_reasons", lambda settings: [])

    def opener(settings):
        raise ValueError("boom")

    readiness = Readiness(Settings(), opener=opener)
    readiness._open()
    assert readiness.state.status == "error" and "boom" in readiness.state.error
