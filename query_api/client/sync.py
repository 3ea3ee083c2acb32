"""`Client`: the freshindex HTTP API from Python (blocking; `AsyncClient` is its twin)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from query_api.client import _core
from query_api.client._core import Filter, Mode, WaitFor
from query_api.client.errors import ConnectionFailed, NotFound
from query_api.client.results import Change, DocumentInfo, DocumentPage, SearchResult, Stats

T = TypeVar("T")


class Client:
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url, headers=_core.headers(api_key), timeout=timeout, transport=transport
        )
        self.retries = retries
        self.backoff = backoff

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, _: type[BaseException] | None, __: BaseException | None, ___: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def search(
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
        return self._call(SearchResult, "POST", "/v1/search", json=body, **extra)

    def document(self, doc_id: str, *, tenant: str | None = None) -> DocumentInfo | None:
        """The indexed version of a document, or None if absent or deleted."""
        params = {"tenant": tenant} if tenant else {}
        try:
            return self._call(DocumentInfo, "GET", f"/v1/documents/{doc_id}", params=params)
        except NotFound:
            return None

    def documents(
        self,
        prefix: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        tenant: str | None = None,
    ) -> DocumentPage:
        """One page of documents in doc_id order; pass `next_cursor` back for the next."""
        params = _core.documents_params(prefix, limit, cursor, tenant)
        return self._call(DocumentPage, "GET", "/v1/documents", params=params)

    def stats(self) -> Stats:
        """Index-wide counters (with API keys, an admin key)."""
        return self._call(Stats, "GET", "/v1/stats")

    def changes(
        self, last_event_id: int | None = None, *, tenant: str | None = None
    ) -> Generator[Change, None, None]:
        """Committed changes as they happen (after `last_event_id`, if given: the feed
        replays what was missed). A dropped connection is resumed from the last change."""
        last, attempt = last_event_id, 0
        while True:
            try:
                for change in self._stream(last, tenant):
                    last, attempt = change.id, 0
                    yield change
            except Exception as e:
                attempt = self._pause(attempt, e)

    def _stream(self, last: int | None, tenant: str | None) -> Iterator[Change]:
        headers = {"Last-Event-ID": str(last)} if last is not None else {}
        params = {"tenant": tenant} if tenant else {}
        with self._http.stream(
            "GET", "/v1/changes", headers=headers, params=params, timeout=_core.STREAM_TIMEOUT
        ) as response:
            if response.status_code != 200:
                response.read()
                raise _core.error(response)
            parser = _core.EventParser()
            for line in response.iter_lines():
                change = parser.feed(line)
                if change is not None:
                    yield change

    def _call(self, model: Callable[..., T], method: str, path: str, **kwargs: Any) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
                if response.status_code == 200:
                    return model(**response.json())
                raise _core.error(response)
            except Exception as e:
                attempt = self._pause(attempt, e)

    def _pause(self, attempt: int, failure: Exception) -> int:
        """Sleep before the next try, or raise `failure` when it may not be retried."""
        if not _core.retryable(failure) or attempt >= self.retries:
            if isinstance(failure, httpx.TransportError):
                raise ConnectionFailed(
                    f"cannot reach {self._http.base_url} ({failure}); is `freshindex api` "
                    "running there?"
                ) from failure
            raise failure
        time.sleep(_core.delay(attempt, self.backoff, failure))
        return attempt + 1
