"""Dependencies shared by the routes: the assistant and the optional API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from api.guard import key_matches
from rag.service import Assistant


def get_assistant(request: Request) -> Assistant:
    """The assistant loaded in the lifespan."""
    return request.app.state.assistant


def require_key(request: Request) -> None:
    """When an API key is configured, demand it as a Bearer token (compared in constant time).

    ``api.guard.RequestGuard`` already refuses keyless requests before their body is read; this
    dependency states the requirement on each route as well, so a route mounted outside the
    guard (or the OpenAPI schema) cannot silently lose it.
    """
    expected = request.app.state.assistant.settings.api_key
    if expected and not key_matches(request.headers.get("authorization", ""), expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
Auth = Depends(require_key)
