"""Dependencies shared by the routes: the assistant and the optional API key."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from rag.service import Assistant


def get_assistant(request: Request) -> Assistant:
    """The assistant loaded in the lifespan."""
    return request.app.state.assistant


def require_key(request: Request) -> None:
    """When an API key is configured, demand it as a Bearer token (compared in constant time)."""
    expected = request.app.state.assistant.settings.api_key
    if not expected:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
Auth = Depends(require_key)
