"""The FastAPI application: model and index opened once, in the background as the server starts; routers per noun."""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi_offline import FastAPIOffline

from api import routes_ask, routes_documents, routes_openai, routes_studies
from api.guard import RequestGuard
from api.readiness import Opener, Readiness
from rag.config import Settings, get_settings
from rag.errors import (BadFilter, BadName, CorpusError, DocumentNotFound, DuplicateDocument, GenerationError,
                        IndexStoreError, LastDocument, ModelError, QuestionError, RagError, StudyNotFound,
                        UnreadableDocument, UnsupportedType)
from rag.feedback import FeedbackError, open_feedback
from rag.service import Assistant

log = logging.getLogger("api")
STATIC = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"
# Bodies other than uploads are small JSON; anything far larger is refused while it streams.
MAX_JSON_BODY = 256_000
# Room for the multipart framing around an upload of the largest allowed document.
MULTIPART_OVERHEAD = 64_000

# Library errors -> HTTP status; the message is the error's own one-line text.
STATUS = [
    (QuestionError, 422),
    (BadFilter, 422),
    (UnsupportedType, 415),
    (BadName, 400),
    (UnreadableDocument, 422),
    (DocumentNotFound, 404),
    (StudyNotFound, 404),
    (DuplicateDocument, 409),
    (LastDocument, 409),
    (CorpusError, 400),
    (GenerationError, 502),
    (FeedbackError, 503),
    (IndexStoreError, 503),
    (ModelError, 503),
    (RagError, 400),
]


def create_app(settings: Settings | None = None, assistant: Assistant | None = None,
               opener: Opener = Assistant.open) -> FastAPI:
    """The app; unless an open assistant is given (tests), ``opener`` opens one in the background
    once the server starts, and the routes that need it answer 503 until it is ready."""
    readiness = Readiness(assistant.settings if assistant is not None else settings or get_settings(), assistant, opener)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if readiness.state.assistant is None:
            readiness.open_in_background()  # listen now: /health reports the load and the build
        else:
            log.info(json.dumps({"event": "ready", "documents": len(readiness.state.assistant.pipeline.index.documents)}))
        yield

    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from files in the wheel, not a CDN,
    # so they render on a machine with no internet.
    app = FastAPIOffline(title="zh-cited-rag", version="0.1.0", lifespan=lifespan, static_url=DOCS_ASSETS,
                         description="Cited answers over Chinese documents: every sentence cites an exact span.")
    app.state.readiness = readiness  # set here, not in the lifespan: a given assistant serves without one
    app.state.feedback = open_feedback(readiness.settings)  # needs no index: works while building
    cors = readiness.settings.cors_origins
    if cors:
        app.add_middleware(CORSMiddleware, allow_origins=cors, allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])

    app.include_router(routes_ask.router)
    app.include_router(routes_openai.router)
    app.include_router(routes_documents.router)
    app.include_router(routes_studies.router)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/view", include_in_schema=False)
    async def source_view() -> FileResponse:
        """A document's whole text with a cited span marked (the page fetches the text itself, with the key)."""
        return FileResponse(STATIC / "view.html", media_type="text/html; charset=utf-8")

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        code = next(code for kind, code in STATUS if isinstance(exc, kind))
        body = {"detail": str(exc)}
        if isinstance(exc, DuplicateDocument):
            body["existing_id"] = exc.existing_id
        return JSONResponse(body, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Say which field is wrong, without echoing the (possibly huge) input back.
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    def body_limit(path: str) -> int:
        if path == "/documents":
            return readiness.settings.max_upload_bytes + MULTIPART_OVERHEAD
        return MAX_JSON_BODY

    # Added first, so it runs inside the logging middleware below: refusals are logged too.
    app.add_middleware(RequestGuard, api_key=lambda: readiness.settings.api_key, body_limit=body_limit)

    @app.middleware("http")
    async def log_requests(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        # Structured log line: no bodies, no headers, so no questions or keys in the logs.
        log.info(json.dumps({"method": request.method, "path": request.url.path, "status": response.status_code,
                             "ms": round((time.perf_counter() - start) * 1000, 1)}))
        return response

    return app
