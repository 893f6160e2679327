"""Document management: list, upload (indexed incrementally), delete; and /health."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, UploadFile, status
from fastapi.concurrency import run_in_threadpool

from api.deps import AssistantDep, Auth
from api.schemas import DocumentInfo, Health

router = APIRouter(tags=["documents"])


@router.get("/health", response_model=Health)
async def health(assistant: AssistantDep) -> Health:
    """Readiness, document and chunk counts, and the model id (never needs the API key)."""
    index = assistant.pipeline.index
    return Health(status="ok", documents=len(index.documents), chunks=len(index.chunks),
                  model_id=index.manifest.get("model_id", ""), auth_required=bool(assistant.settings.api_key))


@router.get("/documents", response_model=list[DocumentInfo], dependencies=[Auth])
async def list_documents(assistant: AssistantDep) -> list[dict]:
    """The indexed documents."""
    return assistant.documents()


@router.post("/documents", response_model=DocumentInfo, status_code=status.HTTP_201_CREATED, dependencies=[Auth])
async def upload_document(file: UploadFile, assistant: AssistantDep) -> dict:
    """Upload a .txt or .md document (UTF-8); a document of the same name is replaced."""
    limit = assistant.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"document larger than {limit} bytes")
    # The name is checked as given: a path ("../x.txt", "a/b.md") is refused, not trimmed.
    return await run_in_threadpool(assistant.add_document, file.filename or "", data)


@router.delete("/documents/{doc_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Auth])
async def delete_document(doc_id: str, assistant: AssistantDep) -> None:
    """Delete a document: its passages never appear again in dense or BM25 results."""
    await run_in_threadpool(assistant.delete_document, doc_id)
