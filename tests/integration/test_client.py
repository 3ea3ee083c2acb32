"""The Python client (sync and async) against the real API: typed answers, read-your-writes,
cursor paging, the change feed resumed by id, and errors that say what to do."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest

from ingest_worker import api_keys
from ingest_worker.database import connect
from ingest_worker.embedding import Embedder
from ingest_worker.pipeline import Pipeline
from query_api.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    Unauthorized,
    Unavailable,
    WaitForDocument,
)
from tests.fix_services import free_port, serve_api
from tests.integration.helpers import upsert


@pytest.fixture
def client(api: httpx.Client) -> Iterator[Client]:
    with Client(str(api.base_url)) as client:
        yield client


def test_search_waits_for_a_write_and_returns_typed_hits(
    client: Client, pipeline: Pipeline
) -> None:
    pipeline.process([upsert("old.md", "The cafeteria opens at eight.", version=1)])
    late = threading.Timer(
        0.5, pipeline.process, [[upsert("leave.md", "Annual leave is 30 days.", version=3)]]
    )
    late.start()
    try:
        result = client.search(
            "how many days of annual leave",
            k=3,
            wait_for=[WaitForDocument(doc_id="leave.md", version=3)],
            timeout=10,
        )
    finally:
        late.join()
    assert result.fresh and result.missing == []
    assert result.hits[0].doc_id == "leave.md" and result.hits[0].version == 3
    assert result.freshness.last_change_at is not None
    stale = client.search("leave", wait_for=[{"doc_id": "leave.md", "version": 9}], timeout=0.2)
    assert not stale.fresh and stale.missing[0]["version"] == 9


def test_filters_and_keyword_mode_pass_through(client: Client, pipeline: Pipeline) -> None:
    pipeline.process(
        [
            upsert("hr/a.md", "Parental leave rules.", metadata={"team": "hr"}),
            upsert("eng/b.md", "Parental leave rules for engineers.", metadata={"team": "eng"}),
        ]
    )
    hits = client.search("parental leave", mode="keyword", filter={"metadata": {"team": "hr"}})
    assert [h.doc_id for h in hits.hits] == ["hr/a.md"] and hits.mode == "keyword"


def test_documents_are_paged_with_a_cursor(client: Client, pipeline: Pipeline) -> None:
    pipeline.process([upsert(f"kb/{i:02}.md", f"Article number {i}.") for i in range(7)])
    pipeline.process([upsert("other.md", "Not in kb.")])
    seen, cursor = [], None
    while True:
        page = client.documents(prefix="kb/", limit=3, cursor=cursor)
        seen += [d.doc_id for d in page.documents]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"kb/{i:02}.md" for i in range(7)]
    assert len(client.documents().documents) == 8
    info = client.document("kb/03.md")
    assert info is not None and info.chunk_count == 1 and info.version >= 0
    assert client.document("nope.md") is None
    with pytest.raises(InvalidRequest, match="invalid cursor"):
        client.documents(cursor="!!!")
    assert client.stats().documents == 8


def test_change_feed_resumes_after_the_last_event_id(client: Client, pipeline: Pipeline) -> None:
    pipeline.process([upsert("a.md", "first", version=1)])
    feed = client.changes(last_event_id=0)
    first = next(feed)
    assert (first.doc_id, first.version, first.op) == ("a.md", 1, "upsert")
    pipeline.process([upsert("b.md", "second", version=2)])
    second = next(feed)
    assert second.doc_id == "b.md" and second.id > first.id
    feed.close()
    resumed = client.changes(last_event_id=first.id)
    assert next(resumed).id == second.id
    resumed.close()


def test_async_client_searches_and_follows_changes(api: httpx.Client, pipeline: Pipeline) -> None:
    pipeline.process([upsert("async.md", "Asynchronous clients read the index too.", version=4)])

    async def run() -> None:
        async with AsyncClient(str(api.base_url)) as client:
            result = await client.search(
                "asynchronous", wait_for=[WaitForDocument(doc_id="async.md", version=4)]
            )
            assert result.fresh and result.hits[0].doc_id == "async.md"
            assert (await client.document("async.md")) is not None
            assert (await client.documents(prefix="async")).documents[0].version == 4
            changes = client.changes(last_event_id=0)
            change = await anext(changes)
            assert change.doc_id == "async.md"
            await changes.aclose()

    asyncio.run(run())


def test_errors_say_what_to_do(db_url: str, embedder: Embedder, pipeline: Pipeline) -> None:
    pipeline.process([upsert("x.md", "Globex secrets.", tenant="globex")])
    with connect(db_url) as conn:
        acme = api_keys.create(conn, "acme", "acme app")[0]
    with serve_api(db_url, embedder, require_keys=True) as api:
        url = str(api.base_url)
        with Client(url, api_key="") as anonymous, pytest.raises(Unauthorized, match="api_key"):
            anonymous.search("secrets")
        with Client(url, api_key=acme) as tenant:
            assert tenant.search("secrets").hits == []
            with pytest.raises(Forbidden, match="tenant 'acme' only"):
                tenant.search("secrets", filter={"tenant": "globex"})
            with pytest.raises(Forbidden, match="admin key"):
                tenant.stats()
            with pytest.raises(InvalidRequest, match="k: Input should be less"):
                tenant.search("secrets", k=1000)


def test_unavailable_database_is_retried_then_reported(
    embedder: Embedder,
) -> None:
    with (
        serve_api("host=/nonexistent dbname=nothing connect_timeout=1", embedder) as down,
        Client(str(down.base_url), retries=1, backoff=0.01) as client,
        pytest.raises(Unavailable, match="retry") as raised,
    ):
        client.search("anything")
    assert raised.value.retry_after == 2.0
    nowhere = Client(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0.01)
    with nowhere, pytest.raises(ConnectionFailed, match="is `freshindex api` running"):
        nowhere.stats()
