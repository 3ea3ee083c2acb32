"""What the sync and async clients share: request bodies, error mapping, the retry policy
and the Server-Sent Events parser. No I/O here."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeAlias

import httpx
from pydantic import BaseModel

from query_api.client.errors import ApiError, Unavailable, error_for
from query_api.client.results import Change
from query_api.models import SearchFilter, WaitForDocument, WaitForPosition

DEFAULT_URL = "http://127.0.0.1:8000"
Mode: TypeAlias = Literal["vector", "keyword", "hybrid"]
WaitFor: TypeAlias = WaitForDocument | WaitForPosition | Mapping[str, Any]
Filter: TypeAlias = SearchFilter | Mapping[str, Any]
# Reading the change feed: the server sends a keepalive every 15 s.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)


def headers(api_key: str | None) -> dict[str, str]:
    """Authorization for `api_key`, else FRESHINDEX_API_KEY, else none."""
    key = api_key if api_key is not None else os.environ.get("FRESHINDEX_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _plain(value: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return dict(value)


def search_body(
    query: str,
    k: int,
    mode: Mode | None,
    filter: Filter | None,
    group_by: str | None,
    wait_for: Iterable[WaitFor],
    timeout: float | None,
) -> dict[str, Any]:
    """The POST /v1/search body; what is None is left to the server's defaults."""
    body: dict[str, Any] = {"query": query, "k": k}
    optional = {
        "mode": mode,
        "filter": _plain(filter) if filter is not None else None,
        "group_by": group_by,
        "wait_for": [_plain(w) for w in wait_for] or None,
        "wait_timeout_ms": round(timeout * 1000) if timeout is not None else None,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


def documents_params(
    prefix: str | None, limit: int, cursor: str | None, tenant: str | None
) -> dict[str, Any]:
    params = {"prefix": prefix, "limit": limit, "cursor": cursor, "tenant": tenant}
    return {name: value for name, value in params.items() if value is not None}


def error(response: httpx.Response) -> ApiError:
    """The error an unsuccessful answer stands for."""
    try:
        detail = response.json().get("detail", response.text)
    except (json.JSONDecodeError, AttributeError):
        detail = response.text or response.reason_phrase
    return error_for(response.status_code, detail, _retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return float(value)
    except ValueError:
        return None


def delay(attempt: int, backoff: float, failure: Exception) -> float:
    """Seconds before retry `attempt` (0-based): exponential, at least the server's
    Retry-After, at most 30 s."""
    wait = backoff * 2**attempt
    if isinstance(failure, Unavailable) and failure.retry_after is not None:
        wait = max(wait, failure.retry_after)
    return float(min(wait, 30.0))


def retryable(failure: Exception) -> bool:
    return isinstance(failure, Unavailable | httpx.TransportError)


class EventParser:
    """Server-Sent Events, line by line (the lines httpx's iter_lines yields)."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = "message"

    def feed(self, line: str) -> Change | None:
        """The change this line completes, if any."""
        if not line:
            data, event = self._data, self._event
            self._data, self._event = [], "message"
            if data and event == "change":
                return Change.model_validate_json("\n".join(data))
            return None
        if line.startswith(":"):
            return None  # a comment: the keepalive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None
