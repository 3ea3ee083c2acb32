"""A LangChain retriever over a running freshindex API, with read-your-writes::

    from query_api.integrations.langchain import FreshindexRetriever

    retriever = FreshindexRetriever(url="http://127.0.0.1:8000", k=4,
                                    filter={"metadata": {"team": "hr"}})
    docs = retriever.invoke("leave policy",
                            wait_for=[{"doc_id": "leave.md", "version": 7}])

`k`, `mode`, `filter`, `group_by`, `wait_for` and `wait_timeout` can be set on the retriever
and overridden per call (`invoke(query, k=..., wait_for=...)`)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from query_api.client import AsyncClient, Client
from query_api.client._core import DEFAULT_URL, Mode
from query_api.client.results import SearchResult
from query_api.integrations import hit_metadata
from query_api.models import WaitForDocument, WaitForPosition

_PER_CALL = ("k", "mode", "filter", "group_by", "wait_for", "wait_timeout")


class FreshindexRetriever(BaseRetriever):
    """Chunks from the freshindex index as LangChain `Document`s; each document's metadata
    has doc_id, ordinal, version, indexed_at, score and the hit's own metadata."""

    url: str = Field(default=DEFAULT_URL, description="The freshindex API.")
    api_key: str | None = Field(default=None, description="Default: FRESHINDEX_API_KEY.")
    k: int = Field(default=4, ge=1, le=100)
    mode: Mode | None = Field(default=None, description="vector, keyword or hybrid.")
    filter: dict[str, Any] | None = Field(
        default=None, description='{"metadata": {...}, "doc_id_prefix": ..., "tenant": ...}'
    )
    group_by: str | None = None
    wait_for: list[WaitForDocument | WaitForPosition] = Field(
        default_factory=list, description="Answer once these writes are indexed."
    )
    wait_timeout: float | None = Field(default=None, description="Longest wait, in seconds.")
    timeout: float = 30.0

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = set(overrides) - set(_PER_CALL)
        if unknown:
            raise TypeError(f"unknown search options {sorted(unknown)}; use {_PER_CALL}")
        options = {name: getattr(self, name) for name in _PER_CALL} | overrides
        options["timeout"] = options.pop("wait_timeout")
        return options

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        with Client(self.url, api_key=self.api_key, timeout=self.timeout) as client:
            return _documents(client.search(query, **self._options(kwargs)))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        async with AsyncClient(self.url, api_key=self.api_key, timeout=self.timeout) as client:
            return _documents(await client.search(query, **self._options(kwargs)))


def _documents(result: SearchResult) -> list[Document]:
    return [
        Document(
            id=f"{hit.doc_id}#{hit.ordinal}",
            page_content=hit.text,
            metadata=hit_metadata(hit, result),
        )
        for hit in result.hits
    ]
