"""`freshindex mcp`: the index as MCP tools for agents (needs `freshindex[mcp]`)."""

from __future__ import annotations

from typing import Annotated

import typer

from ingest_worker import runtime


def mcp(
    transport: Annotated[
        str, typer.Option(help="stdio (an agent starts this command) or http (streamable HTTP).")
    ] = "stdio",
    url: Annotated[
        str | None, typer.Option(help="The freshindex API [env FRESHINDEX_API_URL].")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Key sent to the API; its tenant is what tools read [env "
            "FRESHINDEX_API_KEY]. Over HTTP a request's own bearer key wins."
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="HTTP bind address [env FRESHINDEX_HOST].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port [env FRESHINDEX_MCP_PORT].")] = None,
) -> None:
    """Serve MCP tools search (with wait_for), get_document, list_documents and
    index_status over a running freshindex API; stdio by default, or streamable HTTP at
    http://HOST:PORT/mcp."""
    if transport not in ("stdio", "http"):
        raise typer.BadParameter("stdio or http", param_hint="--transport")
    # On stdio, stdout carries the protocol (logs go to stderr): keep stderr quiet too.
    level = "WARNING" if transport == "stdio" else None
    settings = runtime.settings_from(
        api_url=url, api_key=api_key, host=host, mcp_port=port, log_level=level
    )
    runtime.serve_mcp(settings, transport)
