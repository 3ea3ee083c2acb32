"""HTTP behaviour that does not need a folder: validation, 404, filters, 503, readiness."""

from __future__ import annotations

import httpx
import pytest

from ingest_worker.embedding import Embedder
from ingest_worker.events import DocumentEvent, Op
from ingest_worker.pipeline import Pipeline
from tests.fix_services import serve_api
from tests.integration.helpers import search


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"k": 3}, "query"),
        ({"query": "   "}, "query must contain some text"),
        ({"query": "x", "k": 0}, "greater than or equal to 1"),
        ({"query": "x", "k": 101}, "less than or equal to 100"),
        ({"query": "x", "filter": {"colour": "red"}}, "Extra inputs"),
        ({"query": "x" * 5000}, "at most 4000 characters"),
        ({"query": "a\x00b"}, "NUL"),
        ({"query": "x", "filter": {"metadata": {"k\x00": "v"}}}, "NUL"),
    ],
)
def test_bad_requests_get_422_with_a_reason(
    api: httpx.Client, body: dict[str, object], message: str
) -> None:
    response = api.post("/v1/search", json=body)
    assert response.status_code == 422
    assert message in response.text


def test_unknown_document_is_404(api: httpx.Client) -> None:
    response = api.get("/v1/documents/no/such/doc.md")
    assert response.status_code == 404
    assert "no/such/doc.md" in response.json()["detail"]


def test_filters_on_metadata_and_doc_id_prefix(api: httpx.Client, pipeline: Pipeline) -> None:
    events = [
        DocumentEvent(
            doc_id=f"{team}/{i}.md",
            op=Op.UPSERT,
            source="test",
            content=f"Policy {i} on annual leave for {team}.".encode(),
            content_type="text/plain",
            metadata={"team": team},
        )
        for team in ("hr", "eng")
        for i in range(15)
    ]
    pipeline.process(events)
    hits = search(api, "annual leave policy", k=10, metadata={"team": "hr"})
    assert len(hits) == 10 and {h["metadata"]["team"] for h in hits} == {"hr"}
    hits = search(api, "annual leave policy", k=12, doc_id_prefix="eng/")
    assert len(hits) == 12 and all(h["doc_id"].startswith("eng/") for h in hits)
    assert search(api, "leave", doc_id_prefix="it/") == []
    hostile = search(api, "leave", metadata={"team": "hr' OR '1'='1"})
    assert hostile == []


def test_readiness_and_503_when_the_database_is_unreachable(
    api: httpx.Client, embedder: Embedder
) -> None:
    assert api.get("/readyz").json() == {"status": "ready"}
    assert api.get("/healthz").status_code == 200
    with serve_api("host=/nonexistent dbname=nothing connect_timeout=1", embedder) as down:
        assert down.get("/healthz").status_code == 200
        assert down.get("/readyz").status_code == 503
        response = down.post("/v1/search", json={"query": "anything"})
        assert response.status_code == 503
        assert "retry" in response.json()["detail"]
        assert down.get("/v1/stats").status_code == 503
