"""`freshindex mcp` with the official MCP client over stdio and streamable HTTP, against a
real `freshindex api` process: every tool listed and called, results carry doc_id, version
and freshness, and a tenant key never sees another tenant."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from kafka_dev.broker import terminate
from tests.fix_api_process import IndexService
from tests.fix_services import free_port, wait_until
from tests.integration.helpers import upsert

FRESHINDEX = str(Path(sys.executable).with_name("freshindex"))
TOOLS = {"search", "get_document", "list_documents", "index_status"}


def stdio_server(service: IndexService, key: str) -> StdioServerParameters:
    env = {"FRESHINDEX_API_KEY": key, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return StdioServerParameters(command=FRESHINDEX, args=["mcp", "--url", service.url], env=env)


@contextmanager
def http_server(service: IndexService, log: Path) -> Iterator[str]:
    """`freshindex mcp --transport http` with no key of its own: callers bring theirs."""
    port = free_port()
    with log.open("ab") as out:  # the child keeps its own copy of the file
        process = subprocess.Popen(
            [FRESHINDEX, "mcp", "--transport", "http", "--url", service.url, "--port", str(port)],
            env={k: v for k, v in os.environ.items() if k != "FRESHINDEX_API_KEY"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def listening() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=5)
            return True
        except httpx.TransportError:
            return False

    try:
        wait_until(listening, 120, "`freshindex mcp --transport http` to listen")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        terminate(process)


@asynccontextmanager
async def http_client(url: str, key: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def check_tools_as_acme(client: Client, service: IndexService) -> None:
    listed = await client.list_tools()
    assert {tool.name for tool in listed.tools} == TOOLS
    found = await call(client, "search", query="how do I request sick leave?", k=3)
    assert found["hits"][0]["doc_id"] == "policies/sick-leave.md"
    assert found["hits"][0]["version"] == 1 and found["hits"][0]["indexed_at"]
    assert found["freshness"]["last_change_at"] and found["fresh"] is True
    doc = await call(client, "get_document", doc_id="policies/sick-leave.md")
    assert doc["tenant"] == "acme" and doc["version"] == 1
    page = await call(client, "list_documents", prefix="policies/", limit=2)
    assert len(page["documents"]) == 2 and page["next_cursor"]
    nxt = await call(client, "list_documents", prefix="policies/", cursor=page["next_cursor"])
    assert {d["tenant"] for d in page["documents"] + nxt["documents"]} == {"acme"}
    # Another tenant's document is invisible, whatever the tool.
    hits = (await call(client, "search", query="merger plans", k=20))["hits"]
    assert "secret/merger.md" not in {h["doc_id"] for h in hits}
    assert {h["metadata"].get("tenant_name") for h in hits} <= {"acme", None}
    missing = await client.call_tool("get_document", {"doc_id": "secret/merger.md"})
    assert missing.is_error and "no document" in str(missing.content)
    status = await client.call_tool("index_status", {})
    assert status.is_error and "admin key" in str(status.content)


async def test_stdio_tools_for_a_tenant_key(index_service: IndexService) -> None:
    server = stdio_server(index_service, index_service.keys["acme"])
    async with Client(server) as client:
        await check_tools_as_acme(client, index_service)


async def test_stdio_search_waits_for_a_fresh_write(index_service: IndexService) -> None:
    server = stdio_server(index_service, index_service.keys["globex"])
    write = upsert("news/q3.md", "Globex third quarter results.", 4, tenant="globex")
    async with Client(server) as client:
        pending = await call(
            client, "search", query="quarter results", k=1, wait_timeout_s=0.2,
            wait_for=[{"doc_id": "news/q3.md", "version": 4}],
        )  # fmt: skip
        assert pending["fresh"] is False and pending["missing"][0]["doc_id"] == "news/q3.md"
        index_service.pipeline.process([write])
        done = await call(
            client, "search", query="quarter results", k=1, wait_timeout_s=10,
            wait_for=[{"doc_id": "news/q3.md", "version": 4}],
        )  # fmt: skip
    assert done["fresh"] is True and done["hits"][0]["doc_id"] == "news/q3.md"
    assert done["hits"][0]["version"] == 4


async def test_http_tools_honour_each_callers_key(
    index_service: IndexService, tmp_path: Path
) -> None:
    with http_server(index_service, tmp_path / "mcp.log") as url:
        async with http_client(url, index_service.keys["acme"]) as client:
            await check_tools_as_acme(client, index_service)
        async with http_client(url, index_service.keys["globex"]) as client:
            hits = (await call(client, "search", query="merger plans", k=1))["hits"]
            assert hits[0]["doc_id"] == "secret/merger.md"
        async with http_client(url, index_service.keys["admin"]) as client:
            status = await call(client, "index_status")
            assert status["documents"] >= 11 and status["model"]
        async with http_client(url, None) as client:
            refused = await client.call_tool("search", {"query": "leave"})
            assert refused.is_error and "freshindex keys create" in str(refused.content)
