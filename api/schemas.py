"""Request and response models of the HTTP API (answers share the CLI's machine form)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, field_validator

from rag.config import MAX_TOP_K
from rag.ingest.metadata import Metadata
from rag.schema import Answer, Citation, Passage

__all__ = ["Answer", "Citation", "Passage", "AskRequest", "SearchRequest", "SearchResponse", "Message",
           "ChatRequest", "DocumentInfo", "Health", "Progress", "Quote", "SourceContext", "FeedbackRequest",
           "FeedbackReceipt"]

# Turns of history a question is answered with: follow-ups lean on the recent ones. Longer
# conversations are accepted and their oldest turns dropped (a chat page sends them all).
MAX_HISTORY = 50
# A bound on what is accepted at all (the body limit bounds it too).
MAX_HISTORY_ACCEPTED = 1_000


class Message(BaseModel):
    """One turn of a conversation; ``content`` is text, or OpenAI-style parts of which only text ones are read."""

    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=20_000)

    @field_validator("content", mode="before")
    @classmethod
    def _text_of_parts(cls, value):
        """``[{"type": "text", "text": "…"}, …]`` (what many OpenAI clients send) -> the texts joined."""
        if not isinstance(value, list):
            return value
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ValueError(f"only text content parts are supported (got {kind!r})")
            texts.append(part["text"])
        return "\n".join(texts)


# A request's scope: document ids (as `GET /documents` lists them) to answer from; null for all.
Scope = Annotated[list[str] | None, Field(
    default=None, max_length=1_000, examples=[["msc-neuro-review.zh.txt"]],
    description="Answer only from these documents (ids as GET /documents lists them); null for all. "
                "None of them indexed: an answer saying so, not an error.")]


class Filters(BaseModel):
    """Metadata a document must have to be answered from (with ``documents``, both must hold)."""

    year_from: int | None = Field(default=None, ge=1000, le=2999)
    year_to: int | None = Field(default=None, ge=1000, le=2999)
    tags: list[str] = Field(default_factory=list, max_length=50)


def _recent(turns: list) -> list:
    """The last ``MAX_HISTORY`` turns."""
    return turns[-MAX_HISTORY:]


class AskRequest(BaseModel):
    """A question, with the earlier turns of the conversation when it is a follow-up."""

    question: str = Field(description="The question, in Chinese or English.", examples=["为什么Bang和Chung的研究结论不一致？"])
    history: Annotated[list[Message], AfterValidator(_recent)] = Field(
        default_factory=list, max_length=MAX_HISTORY_ACCEPTED,
        description=f"Earlier turns, oldest first; only the last {MAX_HISTORY} are used.")
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    documents: Scope = None
    filters: Filters | None = None


class SearchRequest(BaseModel):
    """A claim or phrase whose source passages a writer needs."""

    claim: str = Field(examples=["外泌体中等剂量组认知改善最明显"])
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    documents: Scope = None
    filters: Filters | None = None


class Quote(Passage):
    """A passage with a ready-to-paste citation string naming its source."""

    citation: str


class SearchResponse(BaseModel):
    claim: str
    passages: list[Quote]


class ChatRequest(BaseModel):
    """The OpenAI chat-completions request (fields the assistant does not use are accepted and ignored)."""

    model: str | None = None
    messages: list[Message] = Field(min_length=1, max_length=MAX_HISTORY_ACCEPTED)
    stream: bool = False
    stream_options: dict | None = None
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    documents: Scope = None
    filters: Filters | None = None


class DocumentInfo(BaseModel):
    """An indexed document: its size, its pages (PDF), its bibliographic record and reference strings."""

    id: str
    chars: int
    sha256: str
    sentences: int
    chunks: int
    pages: int | None = None
    metadata: Metadata
    references: dict[str, str]


def _patch_of(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every field optional and unknown fields refused: a partial update of it."""
    fields = {name: (Annotated[info.annotation, *info.metadata] | None, None) for name, info in model.model_fields.items()}
    return create_model(f"{model.__name__}Patch", __config__=ConfigDict(extra="forbid"), **fields)


# Bibliographic fields to set on a document; a field left out is kept, a null goes back to what the file says.
MetadataPatch = _patch_of(Metadata)


class Progress(BaseModel):
    """How far the current step of loading or building the index is (null: not known)."""

    stage: str = Field(examples=["embedding 1204 texts (batches)"])
    done: int
    total: int | None
    rate_per_s: float | None
    eta_s: float | None


class Health(BaseModel):
    """``ok`` once the index serves; ``loading`` or ``building`` before (with ``progress``); ``error`` if opening failed.

    Counts and the model id are null until the index is open; ``progress`` also shows a rebuild
    after an upload or delete while the old index keeps serving.
    """

    status: Literal["loading", "building", "ok", "error"]
    documents: int | None
    chunks: int | None
    model_id: str | None
    auth_required: bool
    progress: Progress | None = None
    error: str | None = None
    max_question_chars: int | None = None


class DocumentText(BaseModel):
    """A document's canonical text (a PDF's pages each start with a form feed, ``\\f``)."""

    doc_id: str
    text: str


class SourceContext(BaseModel):
    """A cited span with the paragraph around it: ``text`` is the document's ``[context_start:context_end]``."""

    doc_id: str
    start: int
    end: int
    context_start: int
    context_end: int
    text: str


class FeedbackRequest(BaseModel):
    """A reader's thumbs up or down on one answer, with an optional comment."""

    rating: Literal["up", "down"]
    question: str = Field(min_length=1, max_length=2_000)
    answer: str = Field(max_length=20_000)
    answerable: bool = True
    citations: list[dict] = Field(default_factory=list, max_length=50)
    comment: str = Field(default="", max_length=2_000)


class FeedbackReceipt(BaseModel):
    id: str
