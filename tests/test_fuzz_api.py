"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis): no 5xx, ever."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from rag.pipeline import Pipeline
from rag.service import Assistant
from tests.conftest import private_corpus

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def fuzz_app(real_pipeline, tmp_path_factory):
    """The real app over a private corpus copy (fuzzed uploads and deletes touch only the copy)."""
    s, built = private_corpus(real_pipeline, tmp_path_factory.mktemp("fuzz"), max_upload_bytes=20_000)
    return create_app(assistant=Assistant(Pipeline(s, built, real_pipeline.embedder, real_pipeline.models)))


def test_fuzz_api_never_answers_with_a_server_error(fuzz_app):
    """Every operation of the OpenAPI schema, with generated valid and invalid inputs."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    tried: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def call(case):
            response = case.call()
            tried[label] = tried.get(label, 0) + 1
            assert response.status_code < 500, (label, response.status_code, response.text[:300])

        call()
    assert {"POST /ask", "POST /ask/stream", "POST /search", "POST /v1/chat/completions", "POST /documents",
            "DELETE /documents/{doc_id}", "GET /health"} <= set(tried)
    assert sum(tried.values()) >= 5 * EXAMPLES_PER_OPERATION
