"""schemathesis generates requests from the API's own OpenAPI schema (valid and invalid
ones) and sends them over real HTTP: none may get a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Ok
from schemathesis.schemas import APIOperation, BaseSchema

from ingest_worker.pipeline import Pipeline
from tests.integration.helpers import upsert


@pytest.fixture
def api_schema(api: httpx.Client, pipeline: Pipeline) -> BaseSchema:
    pipeline.process(
        [upsert(f"policy/{topic}.md", f"Our policy on {topic}.", metadata={"team": "ops"})
         for topic in ("leave", "travel", "security")]
    )  # fmt: skip
    return schemathesis.openapi.from_url(f"{api.base_url}/openapi.json")


def test_no_generated_request_gets_a_server_error(api_schema: BaseSchema) -> None:
    # schemathesis's own pytest plugin does not load under this pytest; its strategies do.
    operations = [_operation(result) for result in api_schema.get_all_operations()]
    checked = []
    for operation in operations:
        if operation.path == "/v1/changes":  # an endless stream; tested in test_freshness
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        call()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert "POST /v1/search" in checked and len(checked) >= 5, checked


def _operation(
    result: Ok[APIOperation[Any, Any, Any, Any]] | Err[InvalidSchema],
) -> APIOperation[Any, Any, Any, Any]:
    """The operation, or the schema error that kept schemathesis from building it."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()
