"""Questions and sources: /ask, /ask/stream and /search."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sse_starlette.sse import EventSourceResponse

from api.deps import AssistantDep, Auth
from api.schemas import Answer, AskRequest, Quote, SearchRequest, SearchResponse
from rag.errors import RagError

router = APIRouter(dependencies=[Auth], tags=["questions"])


@router.post("/ask", response_model=Answer, response_model_exclude_none=True)
async def ask(body: AskRequest, assistant: AssistantDep) -> Answer:
    """A short answer whose every sentence cites the passage it rests on (same JSON as `rag ask --json`)."""
    pipeline = assistant.pipeline  # one index for the whole request
    answer = await run_in_threadpool(pipeline.ask, body.question, [m.model_dump() for m in body.history], body.top_k,
                                     scope_of(body, assistant))
    assistant.with_references(answer.citations)
    return answer


@router.post("/ask/stream")
async def ask_stream(body: AskRequest, assistant: AssistantDep) -> EventSourceResponse:
    """The answer as Server-Sent Events: `delta` events as it is composed, then `done` with the citations."""
    pipeline = assistant.pipeline
    # Validate and answer before streaming, so bad input still gets a proper 4xx status.
    answer = await run_in_threadpool(pipeline.ask, body.question, [m.model_dump() for m in body.history], body.top_k,
                                     scope_of(body, assistant))
    assistant.with_references(answer.citations)

    async def events():
        for piece in answer_pieces(answer):
            yield {"event": "delta", "data": json.dumps({"text": piece}, ensure_ascii=False)}
        yield {"event": "done", "data": answer.model_dump_json(exclude_none=True)}

    return EventSourceResponse(events())


def scope_of(body, assistant) -> list[str] | None:
    """The documents a request may answer from (its ``documents`` and ``filters``); None for all."""
    filters = body.filters.model_dump() if body.filters else {}
    return assistant.scope(body.documents, **filters)


def answer_pieces(answer: Answer) -> list[str]:
    """The answer text cut after each citation marker: the order in which it was composed."""
    pieces, rest = [], answer.answer
    for c in answer.citations:
        marker = f"[{c.n}]"
        at = rest.find(marker)
        if at < 0:
            continue
        pieces.append(rest[: at + len(marker)])
        rest = rest[at + len(marker):]
    if rest:
        pieces.append(rest)
    return pieces


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, assistant: AssistantDep) -> SearchResponse:
    """Ranked source passages for a claim: section, span, exact quote and a citation string."""
    pipeline = assistant.pipeline
    passages = assistant.with_references(
        await run_in_threadpool(pipeline.search, body.claim, body.top_k, scope_of(body, assistant)))
    return SearchResponse(claim=body.claim.strip(), passages=[Quote(**p.model_dump(), citation=citation_string(p)) for p in passages])


def citation_string(p) -> str:
    """``《msc-neuro-review.zh.txt》，“间充质干细胞治疗中风的临床案例”，第914–1062字符：“…”``"""
    section = f"，“{p.section}”" if p.section else ""
    page = (f"，第{p.page}–{p.page_end}页" if p.page_end else f"，第{p.page}页") if p.page else ""
    return f"《{p.doc_id}》{section}{page}，第{p.start}–{p.end}字符：“{p.text}”"


__all__ = ["router", "RagError"]
