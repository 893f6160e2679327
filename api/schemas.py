"""Request and response models of the HTTP API (answers share the CLI's machine form)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from rag.schema import Answer, Citation, Passage

__all__ = ["Answer", "Citation", "Passage", "AskRequest", "SearchRequest", "SearchResponse", "Message",
           "ChatRequest", "DocumentInfo", "Health", "Quote"]

MAX_HISTORY = 50


class Message(BaseModel):
    """One turn of a conversation."""

    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=20_000)


class AskRequest(BaseModel):
    """A question, with the earlier turns of the conversation when it is a follow-up."""

    question: str = Field(description="The question, in Chinese or English.", examples=["为什么Bang和Chung的研究结论不一致？"])
    history: list[Message] = Field(default_factory=list, max_length=MAX_HISTORY)
    top_k: int | None = Field(default=None, ge=1, le=50)


class SearchRequest(BaseModel):
    """A claim or phrase whose source passages a writer needs."""

    claim: str = Field(examples=["外泌体中等剂量组认知改善最明显"])
    top_k: int | None = Field(default=None, ge=1, le=50)


class Quote(Passage):
    """A passage with a ready-to-paste citation string naming its source."""

    citation: str


class SearchResponse(BaseModel):
    claim: str
    passages: list[Quote]


class ChatRequest(BaseModel):
    """The OpenAI chat-completions request (fields the assistant does not use are accepted and ignored)."""

    model: str | None = None
    messages: list[Message] = Field(min_length=1, max_length=MAX_HISTORY + 1)
    stream: bool = False
    top_k: int | None = Field(default=None, ge=1, le=50)


class DocumentInfo(BaseModel):
    id: str
    chars: int
    sha256: str
    sentences: int
    chunks: int


class Health(BaseModel):
    status: Literal["ok"]
    documents: int
    chunks: int
    model_id: str
    auth_required: bool
