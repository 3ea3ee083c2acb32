"""A LlamaIndex retriever over a running freshindex API, with read-your-writes::

    from llama_index.core.query_engine import RetrieverQueryEngine
    from query_api.integrations.llamaindex import FreshindexRetriever

    retriever = FreshindexRetriever(url="http://127.0.0.1:8000", k=4)
    engine = RetrieverQueryEngine.from_args(retriever, llm=my_llm)

Each `NodeWithScore` holds a `TextNode` whose metadata has doc_id, ordinal, version,
indexed_at, score and the document's own metadata. `wait_for` makes the next retrievals
wait until those writes are indexed (set it, or pass it to `retrieve_fresh`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from query_api.client import AsyncClient, Client
from query_api.client._core import DEFAULT_URL, Filter, Mode, WaitFor
from query_api.client.results import SearchResult
from query_api.integrations import hit_metadata


class FreshindexRetriever(BaseRetriever):
    """Chunks from the freshindex index as LlamaIndex nodes."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        k: int = 4,
        mode: Mode | None = None,
        filter: Filter | None = None,
        group_by: str | None = None,
        wait_for: Sequence[WaitFor] = (),
        wait_timeout: float | None = None,
        timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url, self.api_key, self.timeout = url, api_key, timeout
        self.wait_for = list(wait_for)
        self._options: dict[str, Any] = {
            "k": k,
            "mode": mode,
            "filter": filter,
            "group_by": group_by,
            "timeout": wait_timeout,
        }

    def retrieve_fresh(self, query: str, wait_for: Iterable[WaitFor]) -> list[NodeWithScore]:
        """Retrieve once these writes are indexed (or at the wait timeout)."""
        with self._client() as client:
            return _nodes(client.search(query, wait_for=list(wait_for), **self._options))

    def _client(self) -> Client:
        return Client(self.url, api_key=self.api_key, timeout=self.timeout)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.retrieve_fresh(query_bundle.query_str, self.wait_for)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        async with AsyncClient(self.url, api_key=self.api_key, timeout=self.timeout) as client:
            result = await client.search(
                query_bundle.query_str, wait_for=self.wait_for, **self._options
            )
        return _nodes(result)


def _nodes(result: SearchResult) -> list[NodeWithScore]:
    return [
        NodeWithScore(
            node=TextNode(
                id_=f"{hit.doc_id}#{hit.ordinal}",
                text=hit.text,
                metadata=hit_metadata(hit, result),
            ),
            score=hit.score,
        )
        for hit in result.hits
    ]
