"""Document management: list, upload (indexed incrementally), delete; and /health."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request, UploadFile, status
from pydantic import ValidationError
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from api.deps import AssistantDep, Auth, ReadinessDep
from api.schemas import DocumentInfo, DocumentText, FeedbackReceipt, MetadataPatch, FeedbackRequest, Health, Progress, SourceContext
from rag import progress
from rag.answer.context import context_bounds

router = APIRouter(tags=["documents"])


@router.get("/health", response_model=Health)
async def health(readiness: ReadinessDep) -> Health:
    """Readiness (with progress while loading or building), counts and the model id (never needs the API key)."""
    state = readiness.state
    auth_required = bool(readiness.settings.api_key)
    now = progress_of(progress.current())
    limit = readiness.settings.max_question_chars
    if state.assistant is None:
        return Health(status=state.status, documents=None, chunks=None, model_id=None, auth_required=auth_required,
                      progress=now, error=state.error, max_question_chars=limit)
    index = state.assistant.pipeline.index  # once: a rebuild meanwhile cannot mix two indexes' counts
    down = state.assistant.unavailable  # the Postgres store is unreachable: requests get 503s
    return Health(status="error" if down else "ok", error=down, documents=len(index.documents), chunks=len(index.chunks),
                  model_id=index.manifest.get("model_id", ""), auth_required=auth_required, progress=now,
                  max_question_chars=limit)


def progress_of(snapshot: progress.Snapshot | None) -> Progress | None:
    """The API's form of the work running now (rates and times to a tenth)."""
    if snapshot is None:
        return None
    rate = round(snapshot.rate_per_s, 1) if snapshot.rate_per_s is not None else None
    eta = round(snapshot.eta_s, 1) if snapshot.eta_s is not None else None
    return Progress(stage=snapshot.stage, done=snapshot.done, total=snapshot.total, rate_per_s=rate, eta_s=eta)


@router.get("/documents", response_model=list[DocumentInfo], dependencies=[Auth])
async def list_documents(assistant: AssistantDep) -> list[dict]:
    """The indexed documents."""
    return assistant.documents()


@router.post("/documents", response_model=DocumentInfo, status_code=status.HTTP_201_CREATED, dependencies=[Auth])
async def upload_document(file: UploadFile, assistant: AssistantDep,
                          metadata: str | None = Form(default=None, description=(
                              'Optional JSON of bibliographic fields, e.g. {"title": "…", "authors": ["…"], "year": 2025}'))
                          ) -> dict:
    """Upload a document (.txt/.md in UTF-8, .pdf with a text layer, .docx, .html); one of the same name is replaced.

    A PDF, Word or web-page file is converted to its canonical text (PDF pages kept), which every
    citation indexes into; the original file is what the corpus keeps.
    """
    limit = assistant.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"document larger than {limit} bytes")
    # The name is checked as given: a path ("../x.txt", "a/b.md") is refused, not trimmed.
    fields = None
    if metadata:
        try:
            fields = MetadataPatch.model_validate_json(metadata).model_dump(exclude_unset=True)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "metadata"
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"metadata: {where}: {first['msg']}") from None
    return await run_in_threadpool(assistant.add_document, file.filename or "", data, fields)


@router.patch("/documents/{doc_id:path}", response_model=DocumentInfo, dependencies=[Auth])
async def patch_document(doc_id: str, body: MetadataPatch, assistant: AssistantDep) -> dict:
    """Set a document's bibliographic fields (title, authors, year, journal, DOI, URL, tags…)."""
    return await run_in_threadpool(assistant.set_metadata, doc_id, body.model_dump(exclude_unset=True))


@router.delete("/documents/{doc_id:path}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Auth])
async def delete_document(doc_id: str, assistant: AssistantDep) -> None:
    """Delete a document: its passages never appear again in dense or BM25 results."""
    await run_in_threadpool(assistant.delete_document, doc_id)


@router.get("/documents/{doc_id:path}/context", response_model=SourceContext, dependencies=[Auth])
async def source_context(doc_id: str, assistant: AssistantDep, start: int = Query(ge=0), end: int = Query(ge=1)) -> SourceContext:
    """A span of a document with the paragraph around it (what a citation panel shows)."""
    document = assistant.pipeline.index.documents.get(doc_id)
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no document {doc_id!r}")
    if not start < end <= len(document.text):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"span {start}–{end} is not inside the document (0–{len(document.text)})")
    first, last = context_bounds(document.text, start, end)
    return SourceContext(doc_id=doc_id, start=start, end=end, context_start=first, context_end=last,
                         text=document.text[first:last])


@router.post("/feedback", response_model=FeedbackReceipt, status_code=status.HTTP_201_CREATED, dependencies=[Auth])
async def feedback(body: FeedbackRequest, request: Request) -> FeedbackReceipt:
    """Store a reader's rating of an answer (`rag feedback` lists them and drafts gold items from them)."""
    record = await run_in_threadpool(request.app.state.feedback.add, body.rating, body.question, body.answer,
                                     body.citations, body.answerable, body.comment)
    return FeedbackReceipt(id=record["id"])


@router.get("/documents/{doc_id:path}/text", response_model=DocumentText, dependencies=[Auth])
async def document_text(doc_id: str, assistant: AssistantDep) -> DocumentText:
    """A document's whole canonical text, the one every citation's start and end index into."""
    document = assistant.pipeline.index.documents.get(doc_id)
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no document {doc_id!r}")
    return DocumentText(doc_id=doc_id, text=document.text)


@router.get("/documents/{doc_id:path}/file", dependencies=[Auth])
async def document_file(doc_id: str, assistant: AssistantDep) -> Response:
    """The original file as it was uploaded (a PDF, Word or web-page file, or the text file)."""
    if doc_id not in assistant.pipeline.index.documents:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no document {doc_id!r}")
    if not assistant.settings.store:
        return FileResponse(assistant.settings.corpus_dir / doc_id, filename=doc_id)
    stored = await run_in_threadpool(assistant.original, doc_id)
    if stored is None:  # written before the store kept originals, and no server's folder had it
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the store holds no original file of {doc_id!r}")
    data, content_type = stored
    return Response(data, media_type=content_type, headers={"content-disposition": _attachment(doc_id)})


def _attachment(name: str) -> str:
    """The Content-Disposition FileResponse(filename=name) sends, so a browser saves the file under its name."""
    quoted = quote(name)
    return f"attachment; filename*=utf-8''{quoted}" if quoted != name else f'attachment; filename="{name}"'
