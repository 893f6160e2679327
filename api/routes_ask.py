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
    return await run_in_threadpool(assistant.ask, body.question, [m.model_dump() for m in body.history], body.top_k,
                                   body.documents, filters_of(body))


@router.post("/ask/stream")
async def ask_stream(body: AskRequest, assistant: AssistantDep) -> EventSourceResponse:
    """The answer as Server-Sent Events: `delta` events as it is composed, then `done` with the citations."""
    # Validate and answer before streaming, so bad input still gets a proper 4xx status.
    answer = await run_in_threadpool(assistant.ask, body.question, [m.model_dump() for m in body.history], body.top_k,
                                     body.documents, filters_of(body))

    async def events():
        for piece in answer_pieces(answer):
            yield {"event": "delta", "data": json.dumps({"text": piece}, ensure_ascii=False)}
        yield {"event": "done", "data": answer.model_dump_json(exclude_none=True)}

    return EventSourceResponse(events())


def filters_of(body) -> dict | None:
    """A request's metadata filters as keyword arguments (None when it sets none)."""
    return body.filters.model_dump() if body.filters else None


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
    passages = await run_in_threadpool(assistant.search, body.claim, body.top_k, body.documents, filters_of(body))
    return SearchResponse(claim=body.claim.strip(), passages=[Quote(**p.model_dump(), citation=citation_string(p)) for p in passages])


def citation_string(p) -> str:
    """``《msc-neuro-review.zh.txt》，“间充质干细胞治疗中风的临床案例”，第914–1062字符：“…”``"""
    section = f"，“{p.section}”" if p.section else ""
    page = (f"，第{p.page}–{p.page_end}页" if p.page_end else f"，第{p.page}页") if p.page else ""
    return f"《{p.doc_id}》{section}{page}，第{p.start}–{p.end}字符：“{p.text}”"


__all__ = ["router", "RagError"]
