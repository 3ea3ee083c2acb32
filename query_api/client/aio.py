"""`AsyncClient`: the freshindex HTTP API from asyncio code (the twin of `Client`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from query_api.client import _core
from query_api.client._core import Filter, Mode, WaitFor
from query_api.client.errors import ConnectionFailed, NotFound
from query_api.client.results import Change, DocumentInfo, DocumentPage, SearchResult, Stats

T = TypeVar("T")


class AsyncClient:
    """Search, read and follow one freshindex index.

    `api_key` defaults to FRESHINDEX_API_KEY. Calls that meet a 503 (the database is down)
    or a connection failure are retried `retries` times with exponential backoff that
    honours Retry-After."""

    def __init__(
        self,
        url: str = _core.DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=url, headers=_core.headers(api_key), timeout=timeout, transport=transport
        )
        self.retries = retries
        self.backoff = backoff

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, _: type[BaseException] | None, __: BaseException | None, ___: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: Mode | None = None,
        filter: Filter | None = None,
        group_by: str | None = None,
        wait_for: Iterable[WaitFor] = (),
        timeout: float | None = None,
    ) -> SearchResult:
        """The k best chunks; with `wait_for`, answered once those writes are indexed or
        after `timeout` seconds (then `fresh` is False and `missing` says what)."""
        body = _core.search_body(query, k, mode, filter, group_by, wait_for, timeout)
        # The wait happens server-side: allow for it on top of the usual timeout.
        extra = (
            {"timeout": self._http.timeout.read + timeout}
            if timeout and self._http.timeout.read
            else {}
        )
        return await self._call(SearchResult, "POST", "/v1/search", json=body, **extra)

    async def document(self, doc_id: str, *, tenant: str | None = None) -> DocumentInfo | None:
        """The indexed version of a document, or None if absent or deleted."""
        params = {"tenant": tenant} if tenant else {}
        try:
            return await self._call(DocumentInfo, "GET", f"/v1/documents/{doc_id}", params=params)
        except NotFound:
            return None

    async def documents(
        self,
        prefix: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        tenant: str | None = None,
    ) -> DocumentPage:
        """One page of documents in doc_id order; pass `next_cursor` back for the next."""
        params = _core.documents_params(prefix, limit, cursor, tenant)
        return await self._call(DocumentPage, "GET", "/v1/documents", params=params)

    async def stats(self) -> Stats:
        """Index-wide counters (with API keys, an admin key)."""
        return await self._call(Stats, "GET", "/v1/stats")

    async def changes(
        self, last_event_id: int | None = None, *, tenant: str | None = None
    ) -> AsyncGenerator[Change, None]:
        """Committed changes as they happen (after `last_event_id`, if given: the feed
        replays what was missed). A dropped connection is resumed from the last change."""
        last, attempt = last_event_id, 0
        while True:
            try:
                async for change in self._stream(last, tenant):
                    last, attempt = change.id, 0
                    yield change
            except Exception as e:
                attempt = await self._pause(attempt, e)

    async def _stream(self, last: int | None, tenant: str | None) -> AsyncIterator[Change]:
        headers = {"Last-Event-ID": str(last)} if last is not None else {}
        params = {"tenant": tenant} if tenant else {}
        async with self._http.stream(
            "GET", "/v1/changes", headers=headers, params=params, timeout=_core.STREAM_TIMEOUT
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise _core.error(response)
            parser = _core.EventParser()
            async for line in response.aiter_lines():
                change = parser.feed(line)
                if change is not None:
                    yield change

    async def _call(self, model: Callable[..., T], method: str, path: str, **kwargs: Any) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, **kwargs)
                if response.status_code == 200:
                    return model(**response.json())
                raise _core.error(response)
            except Exception as e:
                attempt = await self._pause(attempt, e)

    async def _pause(self, attempt: int, failure: Exception) -> int:
        """Sleep before the next try, or raise `failure` when it may not be retried."""
        if not _core.retryable(failure) or attempt >= self.retries:
            if isinstance(failure, httpx.TransportError):
                raise ConnectionFailed(
                    f"cannot reach {self._http.base_url} ({failure}); is `freshindex api` "
                    "running there?"
                ) from failure
            raise failure
        await asyncio.sleep(_core.delay(attempt, self.backoff, failure))
        return attempt + 1
