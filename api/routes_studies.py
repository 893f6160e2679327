"""Study records: /studies (filtered, as JSON, CSV or Markdown) and /studies/{id}."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from api.deps import AssistantDep, Auth
from rag.studies import export
from rag.studies.records import Study

router = APIRouter(dependencies=[Auth], tags=["studies"])

Format = Literal["json", "csv", "markdown"]


@router.get("/studies", response_model=list[Study])
async def list_studies(
    assistant: AssistantDep,
    disease: Annotated[str | None, Query(max_length=100, description="A part of the disease's name, e.g. 阿尔茨海默病.")] = None,
    design: Annotated[str | None, Query(max_length=20, description=(
        "A design trait the study states (randomised, controlled, blinded, open-label, single-arm; or 随机, 对照, "
        "盲法, 开放标签, 单臂) or a phase such as II期."))] = None,
    year: Annotated[int | None, Query(ge=1900, le=2100)] = None,
    format: Annotated[Format, Query(description="json (default), csv or markdown; each cell cites its span.")] = "json",
    lang: Annotated[Literal["zh", "en"], Query(description="Column headings of the CSV and Markdown tables.")] = "zh",
):
    """Every study the indexed documents describe, each field an exact span of its document or null."""
    studies = await run_in_threadpool(assistant.studies, disease, design, year)
    if format == "csv":
        return PlainTextResponse(export.to_csv(studies, lang), media_type="text/csv; charset=utf-8")
    if format == "markdown":
        return PlainTextResponse(export.to_markdown(studies, lang), media_type="text/markdown; charset=utf-8")
    return studies


@router.get("/studies/{study_id}", response_model=Study)
async def get_study(study_id: str, assistant: AssistantDep) -> Study:
    """One study record (404 when no study has that id)."""
    return await run_in_threadpool(assistant.study, study_id)
