"""OpenAI-compatible chat: POST /v1/chat/completions (streaming and not) and GET /v1/models.

The last user message is the question and earlier messages are the history. Citations
appear as [n] markers and a short sources list in the message content, so plain chat
clients show them; the full citations are in the extra top-level field ``citations``.
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi import APIRouter, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from sse_starlette.sse import EventSourceResponse

from api.deps import AssistantDep, Auth
from api.routes_ask import answer_pieces, filters_of
from api.schemas import MAX_HISTORY, Answer, ChatRequest

MODEL_ID = "zh-cited-rag"
router = APIRouter(prefix="/v1", dependencies=[Auth], tags=["openai-compatible"])


@router.get("/models")
async def models() -> dict:
    """The one model this server offers: the cited-answer assistant."""
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "zh-cited-rag"}]}


@router.post("/chat/completions")
async def chat_completions(body: ChatRequest, assistant: AssistantDep):
    """Answer the last user message, with the earlier messages as history."""
    if body.messages[-1].role != "user":
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the last message must come from the user")
    question = body.messages[-1].content
    history = [m.model_dump() for m in body.messages[:-1] if m.role != "system"][-MAX_HISTORY:]
    answer = await run_in_threadpool(assistant.ask, question, history, body.top_k, body.documents, filters_of(body))
    pipeline = assistant.pipeline
    content = message_content(answer)
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    citations = [c.model_dump() for c in answer.citations]
    if not body.stream:
        return {
            "id": ident, "object": "chat.completion", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": usage(pipeline.embedder, [m.content for m in body.messages], content),
            "citations": citations, "answerable": answer.answerable,
            "short_answer": answer.short_answer.model_dump() if answer.short_answer else None,
        }

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        return json.dumps({"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}, ensure_ascii=False)

    async def events():
        yield {"data": chunk({"role": "assistant", "content": ""})}
        for piece in answer_pieces(answer) + [sources_text(answer)]:
            if piece:
                yield {"data": chunk({"content": piece})}
        yield {"data": chunk({}, "stop", citations=citations, answerable=answer.answerable)}
        if (body.stream_options or {}).get("include_usage"):  # OpenAI's own way to ask for usage when streaming
            yield {"data": json.dumps({"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                                       "choices": [], "usage": usage(pipeline.embedder, [m.content for m in body.messages],
                                                                     content)}, ensure_ascii=False)}
        yield {"data": "[DONE]"}

    return EventSourceResponse(events())


def usage(embedder, prompt: list[str], completion: str) -> dict:
    """Token counts in the embedding model's tokenizer: the messages read, and the reply written.

    No language model runs, so these are not billing units; they say how much text went each way.
    """
    count = getattr(embedder, "count_tokens", len)
    prompt_tokens, completion_tokens = sum(count(text) for text in prompt), count(completion)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def sources_text(answer: Answer) -> str:
    """The short sources list appended to the message content."""
    if not answer.citations:
        return ""
    lines = [f"[{c.n}] {c.doc_id} · {c.section or '—'} · {c.start}–{c.end}" for c in answer.citations]
    return "\n\n来源 / Sources:\n" + "\n".join(lines)


def message_content(answer: Answer) -> str:
    """The answer with its sources list, as plain chat clients show it."""
    return answer.answer + sources_text(answer)
