"""`freshindex mcp`: the index as MCP tools for agents (the official `mcp` SDK's MCPServer),
over stdio or streamable HTTP. It is a client of a running freshindex API: every tool call
goes through `query_api.client` with an API key, so the key's tenant is all it can read.

The key is the server's (`--api-key` / FRESHINDEX_API_KEY); over HTTP, a request's own
`Authorization: Bearer` header takes precedence, so each agent can bring its own key.
Tool results carry doc_id, version and the index's freshness."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from query_api.client import AsyncClient, ClientError
from query_api.client.results import DocumentInfo, DocumentPage, SearchResult, Stats
from query_api.models import WaitForDocument, WaitForPosition

INSTRUCTIONS = (
    "Search a continuously fresh document index. After writing a document, pass its doc_id "
    "and version (or its Kafka position) in `wait_for` to read your own write. Every hit "
    "carries doc_id, version and indexed_at; `freshness` says how current the index is."
)
T = TypeVar("T")
Metadata = dict[str, str | int | float | bool]


def build_server(api_url: str, api_key: str | None) -> MCPServer:
    """The MCP server with the tools search, get_document, list_documents, index_status."""
    server = MCPServer("freshindex", instructions=INSTRUCTIONS)

    def client(ctx: Context) -> AsyncClient:
        headers = ctx.headers or {}
        bearer = headers.get("authorization", "")
        key = bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else None
        return AsyncClient(api_url, api_key=key or api_key or "", retries=2)

    @server.tool()
    async def search(
        query: str,
        ctx: Context,
        k: int = 5,
        mode: Literal["vector", "keyword", "hybrid"] | None = None,
        doc_id_prefix: str | None = None,
        metadata: Metadata | None = None,
        wait_for: list[WaitForDocument | WaitForPosition] | None = None,
        wait_timeout_s: float | None = None,
    ) -> SearchResult:
        """Search the index: the k best chunks with doc_id, version, indexed_at and score,
        plus the index's freshness. `wait_for` (doc_id+version, or topic+partition+offset)
        answers once those writes are indexed, or at the timeout with fresh=false."""
        where: dict[str, Any] = {"doc_id_prefix": doc_id_prefix, "metadata": metadata}
        where = {name: value for name, value in where.items() if value is not None}
        async with client(ctx) as index:
            return await _relay(
                index.search(
                    query, k, mode=mode, filter=where or None, wait_for=wait_for or (),
                    timeout=wait_timeout_s,
                )
            )  # fmt: skip

    @server.tool()
    async def get_document(doc_id: str, ctx: Context) -> DocumentInfo:
        """One document's indexed version, chunk count, title, metadata and indexed_at."""
        async with client(ctx) as index:
            found = await _relay(index.document(doc_id))
        if found is None:
            raise ToolError(f"no document {doc_id!r} is indexed; list_documents shows what is")
        return found

    @server.tool()
    async def list_documents(
        ctx: Context, prefix: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> DocumentPage:
        """Indexed documents in doc_id order (optionally under a doc_id prefix); pass
        next_cursor back as `cursor` for the next page."""
        async with client(ctx) as index:
            return await _relay(index.documents(prefix, limit, cursor))

    @server.tool()
    async def index_status(ctx: Context) -> Stats:
        """Index size, counters, last change and lag per source (needs an admin key)."""
        async with client(ctx) as index:
            return await _relay(index.stats())

    return server


async def _relay(call: Awaitable[T]) -> T:
    """The call's answer; a client error becomes a tool error that says what to do."""
    try:
        return await call
    except ClientError as e:
        raise ToolError(str(e)) from e


def run(api_url: str, api_key: str | None, transport: str, host: str, port: int) -> None:
    server = build_server(api_url, api_key)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
