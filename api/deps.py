"""Dependencies shared by the routes: the assistant and the optional API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from api.guard import key_matches
from api.readiness import Readiness
from rag.service import Assistant

# Seconds a client is asked to wait while the Postgres store is unreachable.
STORE_RETRY_AFTER_S = 2


def get_readiness(request: Request) -> Readiness:
    """The server's assistant, or how far opening it is."""
    return request.app.state.readiness


def get_assistant(request: Request) -> Assistant:
    """The open assistant; while the model and index load (or after they failed to), a 503 saying so.

    Every route that needs the index takes the assistant through here, so none can reach a
    half-open one.
    """
    readiness = get_readiness(request)
    assistant = readiness.state.assistant
    if assistant is None:
        raise readiness.unavailable()
    if assistant.unavailable:  # the Postgres store is down: say so rather than answer from a stale view
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, assistant.unavailable,
                            headers={"Retry-After": str(STORE_RETRY_AFTER_S)})
    return assistant


def require_key(request: Request) -> None:
    """When an API key is configured, demand it as a Bearer token (compared in constant time).

    ``api.guard.RequestGuard`` already refuses keyless requests before their body is read; this
    dependency states the requirement on each route as well, so a route mounted outside the
    guard (or the OpenAPI schema) cannot silently lose it.
    """
    expected = get_readiness(request).settings.api_key
    if expected and not key_matches(request.headers.get("authorization", ""), expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
ReadinessDep = Annotated[Readiness, Depends(get_readiness)]
Auth = Depends(require_key)
