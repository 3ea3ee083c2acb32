"""The client's pure parts and retry policy, over httpx's mock transport."""

from __future__ import annotations

import httpx

from query_api.client import Client
from query_api.client._core import EventParser, search_body


def test_search_body_leaves_unset_options_to_the_server() -> None:
    assert search_body("q", 5, None, None, None, (), None) == {"query": "q", "k": 5}
    body = search_body(
        "q", 5, "hybrid", {"tenant": "t"}, "document", [{"doc_id": "a", "version": 1}], 2.5
    )
    assert body["group_by"] == "document" and body["wait_timeout_ms"] == 2500
    assert body["filter"] == {"tenant": "t"} and body["mode"] == "hybrid"


def test_event_parser_yields_changes_and_skips_keepalives() -> None:
    parser = EventParser()
    lines = [
        ": keepalive",
        "",
        "id: 7",
        "event: change",
        'data: {"id": 7, "tenant": "default", "doc_id": "a", "version": 1, "op": "upsert", '
        '"indexed_at": "2026-01-01T00:00:00+00:00"}',
    ]
    assert [parser.feed(line) for line in lines] == [None] * 5
    change = parser.feed("")
    assert change is not None and change.id == 7 and change.doc_id == "a"


def test_503_is_retried_with_backoff_then_succeeds() -> None:
    answers = [503, 503, 200]

    def handle(request: httpx.Request) -> httpx.Response:
        status = answers.pop(0)
        if status == 503:
            return httpx.Response(503, json={"detail": "down"}, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"documents": [], "next_cursor": None})

    with Client("http://index", transport=httpx.MockTransport(handle), backoff=0.01) as client:
        assert client.documents().documents == []
    assert answers == []
