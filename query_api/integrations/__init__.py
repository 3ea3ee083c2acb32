"""Adapters that hand the index to the frameworks RAG builders use: `langchain`
(a BaseRetriever), `llamaindex` (a BaseRetriever) and `mcp_server` (`freshindex mcp`).
Each talks to a running freshindex API through `query_api.client`; each needs its extra
(`pip install 'freshindex[langchain]'`, `[llamaindex]`, `[mcp]`)."""

from __future__ import annotations

from typing import Any

from query_api.client.results import Hit, SearchResult


def hit_metadata(hit: Hit, result: SearchResult) -> dict[str, Any]:
    """What a framework's document carries about a hit: the document's own metadata, then
    where the text comes from (doc_id, ordinal, version), when it was indexed and how
    fresh the answer was."""
    return {
        **hit.metadata,
        "doc_id": hit.doc_id,
        "ordinal": hit.ordinal,
        "version": hit.version,
        "indexed_at": hit.indexed_at.isoformat(),
        "title": hit.title,
        "heading": hit.heading,
        "score": hit.score,
        "fresh": result.fresh,
    }
