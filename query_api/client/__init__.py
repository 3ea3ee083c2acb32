"""A Python client for the freshindex HTTP API, sync (`Client`) and async (`AsyncClient`),
on httpx::

    from query_api.client import Client, WaitForDocument

    with Client("http://127.0.0.1:8000", api_key="fik_...") as index:
        result = index.search("leave policy", k=5,
                              wait_for=[WaitForDocument(doc_id="leave.md", version=2)])
        for hit in result.hits:
            print(hit.doc_id, hit.version, hit.score)

Errors are in `query_api.client.errors`; answers in `query_api.client.results`."""

from __future__ import annotations

from query_api.client.aio import AsyncClient
from query_api.client.errors import (
    ApiError,
    ClientError,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)
from query_api.client.results import Change, DocumentInfo, DocumentPage, Hit, SearchResult, Stats
from query_api.client.sync import Client
from query_api.models import SearchFilter, WaitForDocument, WaitForPosition

__all__ = [
    "ApiError",
    "AsyncClient",
    "Change",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "DocumentInfo",
    "DocumentPage",
    "Forbidden",
    "Hit",
    "InvalidRequest",
    "NotFound",
    "SearchFilter",
    "SearchResult",
    "Stats",
    "Unauthorized",
    "Unavailable",
    "WaitForDocument",
    "WaitForPosition",
]
